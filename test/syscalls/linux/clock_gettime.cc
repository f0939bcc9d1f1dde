// clock_gettime(2) and clock_getres(2).
//
// The calls go through syscall(2): libc's clock_gettime uses the vDSO when
// one is mapped, and these tests are about the system call.

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

using ::testing::AllOf;
using ::testing::Ge;
using ::testing::Gt;
using ::testing::Le;
using ::testing::Lt;

constexpr int64_t kNanosPerSecond = 1000000000;

long ClockGettime(clockid_t id, struct timespec* ts) {
  return syscall(SYS_clock_gettime, id, ts);
}

long ClockGetres(clockid_t id, struct timespec* ts) {
  return syscall(SYS_clock_getres, id, ts);
}

int64_t Nanos(const struct timespec& ts) {
  return ts.tv_sec * kNanosPerSecond + ts.tv_nsec;
}

// An id beyond every clock Linux defines (MAX_CLOCKS is 16).
constexpr clockid_t kBadClock = 100;

// The clocks any program may read.
constexpr clockid_t kClocks[] = {
    CLOCK_REALTIME,        CLOCK_MONOTONIC,         CLOCK_PROCESS_CPUTIME_ID,
    CLOCK_THREAD_CPUTIME_ID, CLOCK_MONOTONIC_RAW,   CLOCK_REALTIME_COARSE,
    CLOCK_MONOTONIC_COARSE, CLOCK_BOOTTIME,         CLOCK_TAI,
};

TEST(ClockGettimeTest, EveryClockIsNormalised) {
  for (clockid_t id : kClocks) {
    struct timespec ts = {-1, -1};
    ASSERT_THAT(ClockGettime(id, &ts), SyscallSucceedsWithValue(0))
        << "clock " << id;
    EXPECT_THAT(ts.tv_sec, Ge(0)) << "clock " << id;
    EXPECT_THAT(ts.tv_nsec, AllOf(Ge(0), Lt(kNanosPerSecond)))
        << "clock " << id;
  }
}

TEST(ClockGettimeTest, MonotonicNeverGoesBack) {
  struct timespec prev;
  ASSERT_THAT(ClockGettime(CLOCK_MONOTONIC, &prev), SyscallSucceeds());
  for (int i = 0; i < 1000; i++) {
    struct timespec now;
    ASSERT_THAT(ClockGettime(CLOCK_MONOTONIC, &now), SyscallSucceeds());
    ASSERT_GE(Nanos(now), Nanos(prev)) << "iteration " << i;
    prev = now;
  }
}

TEST(ClockGettimeTest, MonotonicAdvances) {
  struct timespec a, b;
  ASSERT_THAT(ClockGettime(CLOCK_MONOTONIC, &a), SyscallSucceeds());
  // Spin until the clock moves; with a nanosecond clock that is immediate.
  for (int i = 0; i < 1000000; i++) {
    ASSERT_THAT(ClockGettime(CLOCK_MONOTONIC, &b), SyscallSucceeds());
    if (Nanos(b) > Nanos(a)) break;
  }
  EXPECT_GT(Nanos(b), Nanos(a));
}

// CLOCK_BOOTTIME is CLOCK_MONOTONIC plus time spent suspended.
TEST(ClockGettimeTest, BoottimeNotBehindMonotonic) {
  struct timespec mono, boot;
  ASSERT_THAT(ClockGettime(CLOCK_MONOTONIC, &mono), SyscallSucceeds());
  ASSERT_THAT(ClockGettime(CLOCK_BOOTTIME, &boot), SyscallSucceeds());
  EXPECT_GE(Nanos(boot), Nanos(mono));
}

TEST(ClockGettimeTest, RealtimeCloseToTime) {
  struct timespec ts;
  const time_t before = syscall(SYS_time, nullptr);
  ASSERT_THAT(ClockGettime(CLOCK_REALTIME, &ts), SyscallSucceeds());
  const time_t after = syscall(SYS_time, nullptr);
  // time(2) truncates; allow a second either side for coarse clocks.
  EXPECT_THAT(ts.tv_sec, AllOf(Ge(before - 1), Le(after + 1)));
  // And it is a plausible date: after 2020-01-01.
  EXPECT_THAT(ts.tv_sec, Gt(1577836800));
}

TEST(ClockGettimeTest, ProcessCputimeAdvancesWithWork) {
  struct timespec a, b;
  ASSERT_THAT(ClockGettime(CLOCK_PROCESS_CPUTIME_ID, &a), SyscallSucceeds());
  // Burn CPU until the clock moves by at least a millisecond, giving up
  // (and failing) after five seconds of wall time.
  struct timespec start, now;
  ASSERT_THAT(ClockGettime(CLOCK_MONOTONIC, &start), SyscallSucceeds());
  volatile uint64_t sink = 0;
  do {
    for (int i = 0; i < 100000; i++) sink = sink + i;
    ASSERT_THAT(ClockGettime(CLOCK_PROCESS_CPUTIME_ID, &b), SyscallSucceeds());
    ASSERT_THAT(ClockGettime(CLOCK_MONOTONIC, &now), SyscallSucceeds());
  } while (Nanos(b) - Nanos(a) < 1000000 &&
           Nanos(now) - Nanos(start) < 5 * kNanosPerSecond);
  EXPECT_GE(Nanos(b) - Nanos(a), 1000000);
}

TEST(ClockGettimeTest, InvalidClockIsEinval) {
  struct timespec ts;
  EXPECT_THAT(ClockGettime(kBadClock, &ts), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(ClockGettime(16, &ts), SyscallFailsWithErrno(EINVAL));
}

TEST(ClockGettimeTest, BadPointerIsEfault) {
  EXPECT_THAT(ClockGettime(CLOCK_MONOTONIC, nullptr),
              SyscallFailsWithErrno(EFAULT));
  EXPECT_THAT(
      ClockGettime(CLOCK_REALTIME, reinterpret_cast<struct timespec*>(1)),
      SyscallFailsWithErrno(EFAULT));
}

// The high-resolution clocks report a 1ns resolution (hrtimer_resolution with
// high-resolution timers, as on any x86-64 machine of the last decade).
TEST(ClockGetresTest, HighResolutionClocks) {
  for (clockid_t id : {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME}) {
    struct timespec res = {-1, -1};
    ASSERT_THAT(ClockGetres(id, &res), SyscallSucceedsWithValue(0))
        << "clock " << id;
    EXPECT_EQ(res.tv_sec, 0) << "clock " << id;
    EXPECT_EQ(res.tv_nsec, 1) << "clock " << id;
  }
}

// Coarse clocks tick with the scheduler: a resolution between 1 and 10ms
// (HZ from 100 to 1000).
TEST(ClockGetresTest, CoarseClocks) {
  for (clockid_t id : {CLOCK_REALTIME_COARSE, CLOCK_MONOTONIC_COARSE}) {
    struct timespec res;
    ASSERT_THAT(ClockGetres(id, &res), SyscallSucceeds()) << "clock " << id;
    EXPECT_EQ(res.tv_sec, 0) << "clock " << id;
    EXPECT_THAT(res.tv_nsec, AllOf(Ge(1000000), Le(10000000)))
        << "clock " << id;
  }
}

TEST(ClockGetresTest, EveryClockHasAResolution) {
  for (clockid_t id : kClocks) {
    struct timespec res = {-1, -1};
    ASSERT_THAT(ClockGetres(id, &res), SyscallSucceeds()) << "clock " << id;
    EXPECT_GT(Nanos(res), 0) << "clock " << id;
    EXPECT_LT(Nanos(res), kNanosPerSecond) << "clock " << id;
  }
}

// A null result pointer is allowed: the call only validates the clock.
TEST(ClockGetresTest, NullResult) {
  EXPECT_THAT(ClockGetres(CLOCK_MONOTONIC, nullptr),
              SyscallSucceedsWithValue(0));
  EXPECT_THAT(ClockGetres(kBadClock, nullptr), SyscallFailsWithErrno(EINVAL));
}

TEST(ClockGetresTest, InvalidClockIsEinval) {
  struct timespec res;
  EXPECT_THAT(ClockGetres(kBadClock, &res), SyscallFailsWithErrno(EINVAL));
}

TEST(ClockGetresTest, BadPointerIsEfault) {
  EXPECT_THAT(
      ClockGetres(CLOCK_MONOTONIC, reinterpret_cast<struct timespec*>(1)),
      SyscallFailsWithErrno(EFAULT));
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
