// Interval timers: alarm(2), getitimer(2) and setitimer(2) with
// ITIMER_REAL (wall time, SIGALRM), ITIMER_VIRTUAL (user CPU time,
// SIGVTALRM) and ITIMER_PROF (user and system CPU time, SIGPROF).

#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/signal_util.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

int64_t MonotonicNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t Usec(const struct timeval& tv) {
  return tv.tv_sec * 1000000LL + tv.tv_usec;
}

struct itimerval Itimer(int64_t value_us, int64_t interval_us) {
  struct itimerval it = {};
  it.it_value.tv_sec = value_us / 1000000;
  it.it_value.tv_usec = value_us % 1000000;
  it.it_interval.tv_sec = interval_us / 1000000;
  it.it_interval.tv_usec = interval_us % 1000000;
  return it;
}

volatile int fired;

void CountHandler(int) { fired = fired + 1; }

// Burns CPU until fired reaches n or `wall_ns` passes.
void SpinUntilFired(int n, int64_t wall_ns) {
  int64_t end = MonotonicNs() + wall_ns;
  volatile uint64_t sink = 0;
  while (fired < n && MonotonicNs() < end) {
    for (int i = 0; i < 10000; i++) sink = sink + i;
  }
}

// Every test disarms all three timers before and after, and restores the
// handlers and mask of the three signals.
class ItimerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fired = 0;
    DisarmAll();
    sigset_t set = SignalSet({SIGALRM, SIGVTALRM, SIGPROF});
    ASSERT_EQ(pthread_sigmask(SIG_UNBLOCK, &set, &saved_mask_), 0);
    struct sigaction act = {};
    act.sa_handler = CountHandler;
    sigemptyset(&act.sa_mask);
    for (int i = 0; i < 3; i++) {
      ASSERT_THAT(sigaction(kSignals[i], &act, &saved_[i]), SyscallSucceeds());
    }
  }
  void TearDown() override {
    DisarmAll();
    for (int i = 0; i < 3; i++) sigaction(kSignals[i], &saved_[i], nullptr);
    EXPECT_EQ(pthread_sigmask(SIG_SETMASK, &saved_mask_, nullptr), 0);
  }

  static void DisarmAll() {
    struct itimerval zero = {};
    for (int which : {ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF}) {
      setitimer(which, &zero, nullptr);
    }
  }

  static constexpr int kSignals[3] = {SIGALRM, SIGVTALRM, SIGPROF};

 private:
  struct sigaction saved_[3];
  sigset_t saved_mask_;
};

TEST_F(ItimerTest, DisarmedReadsZero) {
  for (int which : {ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF}) {
    struct itimerval it;
    memset(&it, 0xff, sizeof(it));
    ASSERT_THAT(getitimer(which, &it), SyscallSucceeds());
    EXPECT_EQ(Usec(it.it_value), 0) << which;
    EXPECT_EQ(Usec(it.it_interval), 0) << which;
  }
}

TEST_F(ItimerTest, RealReadsRemainingAndReturnsOld) {
  struct itimerval it = Itimer(10000000, 5000000);
  ASSERT_THAT(setitimer(ITIMER_REAL, &it, nullptr), SyscallSucceeds());
  struct itimerval got;
  ASSERT_THAT(getitimer(ITIMER_REAL, &got), SyscallSucceeds());
  EXPECT_LE(Usec(got.it_value), 10000000);
  EXPECT_GT(Usec(got.it_value), 9000000);
  EXPECT_EQ(Usec(got.it_interval), 5000000);

  struct itimerval zero = {}, old;
  ASSERT_THAT(setitimer(ITIMER_REAL, &zero, &old), SyscallSucceeds());
  EXPECT_GT(Usec(old.it_value), 9000000);
  EXPECT_EQ(Usec(old.it_interval), 5000000);
  ASSERT_THAT(getitimer(ITIMER_REAL, &got), SyscallSucceeds());
  EXPECT_EQ(Usec(got.it_value), 0);
}

TEST_F(ItimerTest, RealFiresOnce) {
  struct itimerval it = Itimer(10000, 0);
  ASSERT_THAT(setitimer(ITIMER_REAL, &it, nullptr), SyscallSucceeds());
  int64_t end = MonotonicNs() + 5000000000LL;
  while (!fired && MonotonicNs() < end) {
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, nullptr);
  }
  EXPECT_EQ(fired, 1);
  // One-shot: it is disarmed now.
  struct itimerval got;
  ASSERT_THAT(getitimer(ITIMER_REAL, &got), SyscallSucceeds());
  EXPECT_EQ(Usec(got.it_value), 0);
}

TEST_F(ItimerTest, RealPeriodic) {
  struct itimerval it = Itimer(5000, 5000);
  ASSERT_THAT(setitimer(ITIMER_REAL, &it, nullptr), SyscallSucceeds());
  int64_t end = MonotonicNs() + 5000000000LL;
  while (fired < 3 && MonotonicNs() < end) pause();
  EXPECT_GE(fired, 3);
  struct itimerval got;
  ASSERT_THAT(getitimer(ITIMER_REAL, &got), SyscallSucceeds());
  EXPECT_EQ(Usec(got.it_interval), 5000);
  EXPECT_GT(Usec(got.it_value), 0);
}

TEST_F(ItimerTest, VirtualFiresWithUserTime) {
  struct itimerval it = Itimer(20000, 0);
  ASSERT_THAT(setitimer(ITIMER_VIRTUAL, &it, nullptr), SyscallSucceeds());
  SpinUntilFired(1, 10000000000LL);
  EXPECT_EQ(fired, 1);
}

TEST_F(ItimerTest, ProfFiresWithCpuTime) {
  struct itimerval it = Itimer(20000, 0);
  ASSERT_THAT(setitimer(ITIMER_PROF, &it, nullptr), SyscallSucceeds());
  SpinUntilFired(1, 10000000000LL);
  EXPECT_EQ(fired, 1);
}

TEST_F(ItimerTest, ProfPeriodic) {
  struct itimerval it = Itimer(10000, 10000);
  ASSERT_THAT(setitimer(ITIMER_PROF, &it, nullptr), SyscallSucceeds());
  SpinUntilFired(3, 10000000000LL);
  EXPECT_GE(fired, 3);
}

TEST_F(ItimerTest, VirtualDoesNotAdvanceWhileSleeping) {
  struct itimerval it = Itimer(200000, 0);
  ASSERT_THAT(setitimer(ITIMER_VIRTUAL, &it, nullptr), SyscallSucceeds());
  struct timespec ts = {0, 300 * 1000 * 1000};
  ASSERT_THAT(nanosleep(&ts, nullptr), SyscallSucceeds());
  EXPECT_EQ(fired, 0);
  struct itimerval got;
  ASSERT_THAT(getitimer(ITIMER_VIRTUAL, &got), SyscallSucceeds());
  EXPECT_GT(Usec(got.it_value), 100000);
}

TEST_F(ItimerTest, InvalidWhichIsEinval) {
  struct itimerval it = {};
  EXPECT_THAT(getitimer(3, &it), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(setitimer(static_cast<__itimer_which>(3), &it, nullptr),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(getitimer(-1, &it), SyscallFailsWithErrno(EINVAL));
}

TEST_F(ItimerTest, InvalidTimevalIsEinval) {
  struct itimerval it = {};
  it.it_value.tv_usec = 1000000;
  EXPECT_THAT(setitimer(ITIMER_REAL, &it, nullptr), SyscallFailsWithErrno(EINVAL));
  it = {};
  it.it_interval.tv_usec = -1;
  EXPECT_THAT(setitimer(ITIMER_REAL, &it, nullptr), SyscallFailsWithErrno(EINVAL));
  it = {};
  it.it_value.tv_sec = -1;
  EXPECT_THAT(setitimer(ITIMER_REAL, &it, nullptr), SyscallFailsWithErrno(EINVAL));
}

TEST_F(ItimerTest, BadPointersAreEfault) {
  EXPECT_THAT(getitimer(ITIMER_REAL, reinterpret_cast<struct itimerval*>(8)),
              SyscallFailsWithErrno(EFAULT));
  EXPECT_THAT(syscall(SYS_setitimer, ITIMER_REAL, 8, nullptr),
              SyscallFailsWithErrno(EFAULT));
}

TEST_F(ItimerTest, AlarmReturnsRemainingSeconds) {
  EXPECT_EQ(alarm(0), 0u);
  EXPECT_EQ(alarm(10), 0u);
  // 9.99... seconds left, rounded to the nearest second.
  EXPECT_EQ(alarm(20), 10u);
  EXPECT_EQ(alarm(0), 20u);
  EXPECT_EQ(alarm(0), 0u);
}

TEST_F(ItimerTest, AlarmSharesItimerReal) {
  struct itimerval it = Itimer(5000000, 0);
  ASSERT_THAT(setitimer(ITIMER_REAL, &it, nullptr), SyscallSucceeds());
  EXPECT_EQ(alarm(3), 5u);
  struct itimerval got;
  ASSERT_THAT(getitimer(ITIMER_REAL, &got), SyscallSucceeds());
  EXPECT_LE(Usec(got.it_value), 3000000);
  EXPECT_GT(Usec(got.it_value), 2000000);
}

TEST_F(ItimerTest, AlarmSubSecondRoundsUp) {
  struct itimerval it = Itimer(100000, 0);
  ASSERT_THAT(setitimer(ITIMER_REAL, &it, nullptr), SyscallSucceeds());
  // An armed alarm never reports 0 seconds left.
  EXPECT_EQ(alarm(0), 1u);
}

TEST_F(ItimerTest, AlarmFires) {
  ASSERT_EQ(alarm(1), 0u);
  int64_t start = MonotonicNs();
  while (!fired && MonotonicNs() - start < 5000000000LL) pause();
  EXPECT_EQ(fired, 1);
  EXPECT_GE(MonotonicNs() - start, 900000000);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
