// futex(2): FUTEX_WAIT, FUTEX_WAKE and their _BITSET forms.
//
// Tests with a second thread need clone(2) and are skipped in the sandbox
// until it has threads.

#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstdint>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

constexpr int64_t kNanosPerSecond = 1000000000;
constexpr int64_t kTenMillis = 10000000;

long Futex(void* addr, int op, uint32_t val,
           const struct timespec* ts = nullptr, void* addr2 = nullptr,
           uint32_t val3 = 0) {
  return syscall(SYS_futex, addr, op, val, ts, addr2, val3);
}

int64_t Now(clockid_t clock) {
  struct timespec ts;
  EXPECT_THAT(syscall(SYS_clock_gettime, clock, &ts), SyscallSucceeds());
  return ts.tv_sec * kNanosPerSecond + ts.tv_nsec;
}

struct timespec Timespec(int64_t nanos) {
  return {static_cast<time_t>(nanos / kNanosPerSecond),
          static_cast<long>(nanos % kNanosPerSecond)};
}

// Every test runs with both the private and the shared form of each op.
class FutexTest : public ::testing::TestWithParam<bool> {
 protected:
  int Op(int op) const { return GetParam() ? op | FUTEX_PRIVATE_FLAG : op; }
};

TEST_P(FutexTest, WaitValueMismatchIsEagain) {
  uint32_t word = 1;
  EXPECT_THAT(Futex(&word, Op(FUTEX_WAIT), 2), SyscallFailsWithErrno(EAGAIN));
}

TEST_P(FutexTest, WaitTimesOut) {
  uint32_t word = 0;
  const struct timespec timeout = Timespec(kTenMillis);
  const int64_t start = Now(CLOCK_MONOTONIC);
  EXPECT_THAT(Futex(&word, Op(FUTEX_WAIT), 0, &timeout),
              SyscallFailsWithErrno(ETIMEDOUT));
  EXPECT_GE(Now(CLOCK_MONOTONIC) - start, kTenMillis);
}

// FUTEX_WAIT's timeout is relative; a zero timeout fails at once.
TEST_P(FutexTest, WaitZeroTimeout) {
  uint32_t word = 0;
  const struct timespec timeout = {0, 0};
  EXPECT_THAT(Futex(&word, Op(FUTEX_WAIT), 0, &timeout),
              SyscallFailsWithErrno(ETIMEDOUT));
}

TEST_P(FutexTest, WaitInvalidTimeoutIsEinval) {
  uint32_t word = 0;
  for (const struct timespec& ts : {timespec{0, kNanosPerSecond},
                                    timespec{0, -1}, timespec{-1, 0}}) {
    EXPECT_THAT(Futex(&word, Op(FUTEX_WAIT), 0, &ts),
                SyscallFailsWithErrno(EINVAL))
        << "{" << ts.tv_sec << ", " << ts.tv_nsec << "}";
  }
}

TEST_P(FutexTest, WaitBadTimeoutPointerIsEfault) {
  uint32_t word = 0;
  EXPECT_THAT(Futex(&word, Op(FUTEX_WAIT), 0,
                    reinterpret_cast<struct timespec*>(1)),
              SyscallFailsWithErrno(EFAULT));
}

TEST_P(FutexTest, WakeNobodyIsZero) {
  uint32_t word = 0;
  EXPECT_THAT(Futex(&word, Op(FUTEX_WAKE), 1), SyscallSucceedsWithValue(0));
  EXPECT_THAT(Futex(&word, Op(FUTEX_WAKE), INT_MAX),
              SyscallSucceedsWithValue(0));
  EXPECT_THAT(Futex(&word, Op(FUTEX_WAKE), 0), SyscallSucceedsWithValue(0));
}

TEST_P(FutexTest, UnalignedIsEinval) {
  alignas(8) char words[8] = {};
  EXPECT_THAT(Futex(words + 1, Op(FUTEX_WAIT), 0),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(Futex(words + 2, Op(FUTEX_WAKE), 1),
              SyscallFailsWithErrno(EINVAL));
}

TEST_P(FutexTest, WaitBadAddressIsEfault) {
  // Aligned, but nothing is mapped at page zero.
  EXPECT_THAT(Futex(reinterpret_cast<void*>(8), Op(FUTEX_WAIT), 0),
              SyscallFailsWithErrno(EFAULT));
}

TEST_P(FutexTest, UnknownOpIsEnosys) {
  uint32_t word = 0;
  EXPECT_THAT(Futex(&word, Op(99), 0), SyscallFailsWithErrno(ENOSYS));
}

// The _BITSET forms take an absolute timeout.
TEST_P(FutexTest, WaitBitsetAbsoluteMonotonic) {
  uint32_t word = 0;
  const int64_t deadline = Now(CLOCK_MONOTONIC) + kTenMillis;
  const struct timespec ts = Timespec(deadline);
  EXPECT_THAT(Futex(&word, Op(FUTEX_WAIT_BITSET), 0, &ts, nullptr,
                    FUTEX_BITSET_MATCH_ANY),
              SyscallFailsWithErrno(ETIMEDOUT));
  EXPECT_GE(Now(CLOCK_MONOTONIC), deadline);
}

TEST_P(FutexTest, WaitBitsetAbsoluteRealtime) {
  uint32_t word = 0;
  const int64_t deadline = Now(CLOCK_REALTIME) + kTenMillis;
  const struct timespec ts = Timespec(deadline);
  EXPECT_THAT(Futex(&word, Op(FUTEX_WAIT_BITSET) | FUTEX_CLOCK_REALTIME, 0,
                    &ts, nullptr, FUTEX_BITSET_MATCH_ANY),
              SyscallFailsWithErrno(ETIMEDOUT));
  EXPECT_GE(Now(CLOCK_REALTIME), deadline);
}

TEST_P(FutexTest, WaitBitsetDeadlineInThePast) {
  uint32_t word = 0;
  const struct timespec ts = {1, 0};
  EXPECT_THAT(Futex(&word, Op(FUTEX_WAIT_BITSET), 0, &ts, nullptr,
                    FUTEX_BITSET_MATCH_ANY),
              SyscallFailsWithErrno(ETIMEDOUT));
}

TEST_P(FutexTest, ZeroBitsetIsEinval) {
  uint32_t word = 0;
  const struct timespec ts = {1, 0};
  EXPECT_THAT(Futex(&word, Op(FUTEX_WAIT_BITSET), 0, &ts, nullptr, 0),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(Futex(&word, Op(FUTEX_WAKE_BITSET), 1, nullptr, nullptr, 0),
              SyscallFailsWithErrno(EINVAL));
}

TEST_P(FutexTest, WakeBitsetNobodyIsZero) {
  uint32_t word = 0;
  EXPECT_THAT(Futex(&word, Op(FUTEX_WAKE_BITSET), 1, nullptr, nullptr,
                    FUTEX_BITSET_MATCH_ANY),
              SyscallSucceedsWithValue(0));
}

// FUTEX_CLOCK_REALTIME only means something to an operation that waits with
// an absolute timeout; FUTEX_WAKE refuses it (kernel/futex/syscalls.c).
TEST_P(FutexTest, ClockRealtimeWithWakeIsEnosys) {
  uint32_t word = 0;
  EXPECT_THAT(Futex(&word, Op(FUTEX_WAKE) | FUTEX_CLOCK_REALTIME, 1),
              SyscallFailsWithErrno(ENOSYS));
}

TEST_P(FutexTest, WakeOneWaiter) {
  std::atomic<uint32_t> word{0};
  std::atomic<bool> ready{false};
  long result = -2;
  std::thread waiter([&] {
    ready = true;
    result = Futex(&word, Op(FUTEX_WAIT), 0);
  });
  while (!ready) sched_yield();
  // Wake until the waiter is actually asleep in the kernel and gets woken.
  long woken = 0;
  const int64_t give_up = Now(CLOCK_MONOTONIC) + 10 * kNanosPerSecond;
  while (woken == 0 && Now(CLOCK_MONOTONIC) < give_up) {
    woken = Futex(&word, Op(FUTEX_WAKE), 1);
    if (woken == 0) usleep(1000);
  }
  waiter.join();
  EXPECT_EQ(woken, 1);
  EXPECT_EQ(result, 0);
}

TEST_P(FutexTest, WakeCountIsBounded) {
  constexpr int kWaiters = 4;
  std::atomic<uint32_t> word{0};
  std::atomic<int> done{0};
  std::thread waiters[kWaiters];
  for (auto& t : waiters) {
    t = std::thread([&] {
      while (word.load() == 0) Futex(&word, Op(FUTEX_WAIT), 0);
      done++;
    });
  }
  // Give them time to sleep; correctness does not depend on it.
  usleep(50000);
  word = 1;
  long total = 0;
  long first = Futex(&word, Op(FUTEX_WAKE), 2);
  EXPECT_LE(first, 2);
  total += first;
  while (done < kWaiters) {
    total += Futex(&word, Op(FUTEX_WAKE), INT_MAX);
    usleep(1000);
  }
  for (auto& t : waiters) t.join();
  EXPECT_LE(total, kWaiters);
}

INSTANTIATE_TEST_SUITE_P(SharedAndPrivate, FutexTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Private" : "Shared";
                         });

}  // namespace
}  // namespace testing
}  // namespace pyvisor
