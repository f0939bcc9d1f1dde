// nanosleep(2) and clock_nanosleep(2).
//
// The calls go through syscall(2): glibc implements nanosleep() with the
// clock_nanosleep system call.

#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

constexpr int64_t kNanosPerSecond = 1000000000;
constexpr int64_t kTenMillis = 10000000;

int64_t MonotonicNanos() {
  struct timespec ts;
  EXPECT_THAT(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts),
              SyscallSucceeds());
  return ts.tv_sec * kNanosPerSecond + ts.tv_nsec;
}

int64_t RealtimeNanos() {
  struct timespec ts;
  EXPECT_THAT(syscall(SYS_clock_gettime, CLOCK_REALTIME, &ts),
              SyscallSucceeds());
  return ts.tv_sec * kNanosPerSecond + ts.tv_nsec;
}

long Nanosleep(const struct timespec* req, struct timespec* rem) {
  return syscall(SYS_nanosleep, req, rem);
}

long ClockNanosleep(clockid_t id, int flags, const struct timespec* req,
                    struct timespec* rem) {
  return syscall(SYS_clock_nanosleep, id, flags, req, rem);
}

TEST(NanosleepTest, SleepsAtLeastTheRequest) {
  const struct timespec req = {0, kTenMillis};
  const int64_t start = MonotonicNanos();
  ASSERT_THAT(Nanosleep(&req, nullptr), SyscallSucceedsWithValue(0));
  EXPECT_GE(MonotonicNanos() - start, kTenMillis);
}

// A remaining-time pointer is only written when a signal interrupts the
// sleep.
TEST(NanosleepTest, RemainderUntouchedOnSuccess) {
  const struct timespec req = {0, 1000000};
  struct timespec rem = {12, 34};
  ASSERT_THAT(Nanosleep(&req, &rem), SyscallSucceedsWithValue(0));
  EXPECT_EQ(rem.tv_sec, 12);
  EXPECT_EQ(rem.tv_nsec, 34);
}

TEST(NanosleepTest, ZeroReturnsAtOnce) {
  const struct timespec req = {0, 0};
  EXPECT_THAT(Nanosleep(&req, nullptr), SyscallSucceedsWithValue(0));
}

TEST(NanosleepTest, InvalidTimespecIsEinval) {
  const struct timespec cases[] = {
      {0, kNanosPerSecond},
      {0, -1},
      {-1, 0},
      {0, INT64_MAX},
  };
  for (const struct timespec& req : cases) {
    EXPECT_THAT(Nanosleep(&req, nullptr), SyscallFailsWithErrno(EINVAL))
        << "{" << req.tv_sec << ", " << req.tv_nsec << "}";
  }
}

TEST(NanosleepTest, BadPointerIsEfault) {
  EXPECT_THAT(Nanosleep(nullptr, nullptr), SyscallFailsWithErrno(EFAULT));
  EXPECT_THAT(Nanosleep(reinterpret_cast<struct timespec*>(1), nullptr),
              SyscallFailsWithErrno(EFAULT));
}

TEST(ClockNanosleepTest, RelativeMonotonic) {
  const struct timespec req = {0, kTenMillis};
  const int64_t start = MonotonicNanos();
  ASSERT_THAT(ClockNanosleep(CLOCK_MONOTONIC, 0, &req, nullptr),
              SyscallSucceedsWithValue(0));
  EXPECT_GE(MonotonicNanos() - start, kTenMillis);
}

TEST(ClockNanosleepTest, AbsoluteMonotonic) {
  const int64_t deadline = MonotonicNanos() + kTenMillis;
  const struct timespec req = {deadline / kNanosPerSecond,
                               deadline % kNanosPerSecond};
  ASSERT_THAT(ClockNanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &req, nullptr),
              SyscallSucceedsWithValue(0));
  EXPECT_GE(MonotonicNanos(), deadline);
}

TEST(ClockNanosleepTest, AbsoluteRealtime) {
  const int64_t deadline = RealtimeNanos() + kTenMillis;
  const struct timespec req = {deadline / kNanosPerSecond,
                               deadline % kNanosPerSecond};
  ASSERT_THAT(ClockNanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &req, nullptr),
              SyscallSucceedsWithValue(0));
  EXPECT_GE(RealtimeNanos(), deadline);
}

TEST(ClockNanosleepTest, AbsoluteInThePastReturnsAtOnce) {
  const struct timespec req = {1, 0};
  const int64_t start = MonotonicNanos();
  ASSERT_THAT(ClockNanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &req, nullptr),
              SyscallSucceedsWithValue(0));
  EXPECT_LT(MonotonicNanos() - start, kNanosPerSecond);
}

// clock_nanosleep returns the error number rather than setting errno, but
// the raw system call fails the usual way.
TEST(ClockNanosleepTest, InvalidTimespecIsEinval) {
  const struct timespec req = {0, kNanosPerSecond};
  EXPECT_THAT(ClockNanosleep(CLOCK_MONOTONIC, 0, &req, nullptr),
              SyscallFailsWithErrno(EINVAL));
}

TEST(ClockNanosleepTest, InvalidClockIsEinval) {
  const struct timespec req = {0, 1};
  EXPECT_THAT(ClockNanosleep(100, 0, &req, nullptr),
              SyscallFailsWithErrno(EINVAL));
}

// The thread CPU-time clock cannot be slept on: its k_clock has no nsleep
// operation, and clock_nanosleep then fails with EOPNOTSUPP
// (kernel/time/posix-timers.c; older kernels said EINVAL).
TEST(ClockNanosleepTest, ThreadCputimeIsEopnotsupp) {
  const struct timespec req = {0, 1};
  EXPECT_THAT(ClockNanosleep(CLOCK_THREAD_CPUTIME_ID, 0, &req, nullptr),
              SyscallFailsWithErrno(EOPNOTSUPP));
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
