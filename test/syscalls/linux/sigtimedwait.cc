// Taking signals synchronously: rt_sigtimedwait(2) (sigtimedwait(3),
// sigwaitinfo(3)).

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

constexpr size_t kSigsetSize = 8;

pid_t Tid() { return syscall(SYS_gettid); }

int64_t MonotonicNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

long RawSigtimedwait(const sigset_t* set, siginfo_t* info,
                     const struct timespec* timeout) {
  return syscall(SYS_rt_sigtimedwait, set, info, timeout, kSigsetSize);
}

volatile int handled;

void Handler(int) { handled++; }

// Every test blocks the signals it waits for and restores the mask.
class SigtimedwaitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    handled = 0;
    ASSERT_EQ(pthread_sigmask(SIG_SETMASK, nullptr, &saved_), 0);
    sigset_t set = SignalSet({SIGUSR1, SIGUSR2, SIGALRM, SIGRTMIN});
    ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &set, nullptr), 0);
  }
  void TearDown() override {
    struct itimerval zero = {};
    setitimer(ITIMER_REAL, &zero, nullptr);
    // Drain what a failed test left pending.
    sigset_t set = SignalSet({SIGUSR1, SIGUSR2, SIGALRM, SIGRTMIN});
    struct timespec zero_ts = {};
    while (sigtimedwait(&set, nullptr, &zero_ts) > 0) {
    }
    EXPECT_EQ(pthread_sigmask(SIG_SETMASK, &saved_, nullptr), 0);
  }

 private:
  sigset_t saved_;
};

TEST_F(SigtimedwaitTest, TakesPendingSignal) {
  ASSERT_THAT(syscall(SYS_tgkill, getpid(), Tid(), SIGUSR1), SyscallSucceeds());
  sigset_t set = SignalSet({SIGUSR1});
  siginfo_t info = {};
  struct timespec zero = {};
  EXPECT_THAT(RawSigtimedwait(&set, &info, &zero),
              SyscallSucceedsWithValue(SIGUSR1));
  EXPECT_EQ(info.si_signo, SIGUSR1);
  EXPECT_EQ(info.si_code, SI_TKILL);
  EXPECT_EQ(info.si_pid, getpid());
  EXPECT_EQ(info.si_uid, getuid());
  // It is no longer pending.
  sigset_t pending;
  ASSERT_THAT(sigpending(&pending), SyscallSucceeds());
  EXPECT_FALSE(sigismember(&pending, SIGUSR1));
}

TEST_F(SigtimedwaitTest, NullInfoAndTimeout) {
  ASSERT_THAT(raise(SIGUSR2), SyscallSucceeds());
  sigset_t set = SignalSet({SIGUSR2});
  EXPECT_THAT(RawSigtimedwait(&set, nullptr, nullptr),
              SyscallSucceedsWithValue(SIGUSR2));
}

TEST_F(SigtimedwaitTest, LowestSignalFirst) {
  ASSERT_THAT(raise(SIGUSR2), SyscallSucceeds());
  ASSERT_THAT(raise(SIGUSR1), SyscallSucceeds());
  sigset_t set = SignalSet({SIGUSR1, SIGUSR2});
  struct timespec zero = {};
  EXPECT_THAT(RawSigtimedwait(&set, nullptr, &zero),
              SyscallSucceedsWithValue(SIGUSR1));
  EXPECT_THAT(RawSigtimedwait(&set, nullptr, &zero),
              SyscallSucceedsWithValue(SIGUSR2));
}

TEST_F(SigtimedwaitTest, OnlySignalsOfTheSet) {
  ASSERT_THAT(raise(SIGUSR2), SyscallSucceeds());
  sigset_t set = SignalSet({SIGUSR1});
  struct timespec zero = {};
  EXPECT_THAT(RawSigtimedwait(&set, nullptr, &zero),
              SyscallFailsWithErrno(EAGAIN));
  sigset_t pending;
  ASSERT_THAT(sigpending(&pending), SyscallSucceeds());
  EXPECT_TRUE(sigismember(&pending, SIGUSR2));
}

TEST_F(SigtimedwaitTest, ZeroTimeoutIsEagain) {
  sigset_t set = SignalSet({SIGUSR1});
  struct timespec zero = {};
  EXPECT_THAT(RawSigtimedwait(&set, nullptr, &zero),
              SyscallFailsWithErrno(EAGAIN));
}

TEST_F(SigtimedwaitTest, TimesOut) {
  sigset_t set = SignalSet({SIGUSR1});
  struct timespec timeout = {0, 20 * 1000 * 1000};
  int64_t start = MonotonicNs();
  EXPECT_THAT(RawSigtimedwait(&set, nullptr, &timeout),
              SyscallFailsWithErrno(EAGAIN));
  EXPECT_GE(MonotonicNs() - start, 20 * 1000 * 1000);
}

TEST_F(SigtimedwaitTest, WaitsForTimerSignal) {
  struct itimerval it = {};
  it.it_value.tv_usec = 10000;
  ASSERT_THAT(setitimer(ITIMER_REAL, &it, nullptr), SyscallSucceeds());
  sigset_t set = SignalSet({SIGALRM});
  siginfo_t info = {};
  struct timespec timeout = {10, 0};
  EXPECT_THAT(RawSigtimedwait(&set, &info, &timeout),
              SyscallSucceedsWithValue(SIGALRM));
  EXPECT_EQ(info.si_code, SI_KERNEL);
}

TEST_F(SigtimedwaitTest, OtherHandledSignalIsEintr) {
  struct sigaction act = {};
  act.sa_handler = Handler;
  sigemptyset(&act.sa_mask);
  ScopedSigaction action(SIGALRM, act);
  sigset_t alrm = SignalSet({SIGALRM});
  ASSERT_EQ(pthread_sigmask(SIG_UNBLOCK, &alrm, nullptr), 0);
  struct itimerval it = {};
  it.it_value.tv_usec = 10000;
  ASSERT_THAT(setitimer(ITIMER_REAL, &it, nullptr), SyscallSucceeds());
  sigset_t set = SignalSet({SIGUSR1});
  struct timespec timeout = {10, 0};
  EXPECT_THAT(RawSigtimedwait(&set, nullptr, &timeout),
              SyscallFailsWithErrno(EINTR));
  EXPECT_EQ(handled, 1);
}

TEST_F(SigtimedwaitTest, AwaitedSignalIsNotHandled) {
  // A handler is installed, but the awaited signal is taken by the wait.
  struct sigaction act = {};
  act.sa_handler = Handler;
  sigemptyset(&act.sa_mask);
  ScopedSigaction action(SIGALRM, act);
  struct itimerval it = {};
  it.it_value.tv_usec = 10000;
  ASSERT_THAT(setitimer(ITIMER_REAL, &it, nullptr), SyscallSucceeds());
  sigset_t set = SignalSet({SIGALRM});
  struct timespec timeout = {10, 0};
  EXPECT_THAT(RawSigtimedwait(&set, nullptr, &timeout),
              SyscallSucceedsWithValue(SIGALRM));
  EXPECT_EQ(handled, 0);
  // The mask is the blocked one again.
  sigset_t now;
  ASSERT_EQ(pthread_sigmask(SIG_SETMASK, nullptr, &now), 0);
  EXPECT_TRUE(sigismember(&now, SIGALRM));
}

TEST_F(SigtimedwaitTest, BlockedIgnoredSignalCanBeTaken) {
  struct sigaction ignore = {};
  ignore.sa_handler = SIG_IGN;
  ScopedSigaction action(SIGUSR1, ignore);
  ASSERT_THAT(raise(SIGUSR1), SyscallSucceeds());
  sigset_t set = SignalSet({SIGUSR1});
  struct timespec zero = {};
  EXPECT_THAT(RawSigtimedwait(&set, nullptr, &zero),
              SyscallSucceedsWithValue(SIGUSR1));
}

TEST_F(SigtimedwaitTest, RealtimeSignalsQueueWithValues) {
  for (int i = 0; i < 3; i++) {
    union sigval v;
    v.sival_int = 100 + i;
    ASSERT_THAT(sigqueue(getpid(), SIGRTMIN, v), SyscallSucceeds());
  }
  sigset_t set = SignalSet({SIGRTMIN});
  struct timespec zero = {};
  for (int i = 0; i < 3; i++) {
    siginfo_t info = {};
    ASSERT_THAT(RawSigtimedwait(&set, &info, &zero),
                SyscallSucceedsWithValue(SIGRTMIN));
    EXPECT_EQ(info.si_code, SI_QUEUE);
    EXPECT_EQ(info.si_value.sival_int, 100 + i);
  }
  EXPECT_THAT(RawSigtimedwait(&set, nullptr, &zero),
              SyscallFailsWithErrno(EAGAIN));
}

TEST_F(SigtimedwaitTest, InvalidTimeoutIsEinval) {
  sigset_t set = SignalSet({SIGUSR1});
  struct timespec bad = {0, 1000000000};
  EXPECT_THAT(RawSigtimedwait(&set, nullptr, &bad),
              SyscallFailsWithErrno(EINVAL));
  struct timespec negative = {-1, 0};
  EXPECT_THAT(RawSigtimedwait(&set, nullptr, &negative),
              SyscallFailsWithErrno(EINVAL));
}

TEST_F(SigtimedwaitTest, BadSizeIsEinval) {
  sigset_t set = SignalSet({SIGUSR1});
  struct timespec zero = {};
  EXPECT_THAT(syscall(SYS_rt_sigtimedwait, &set, nullptr, &zero, 4),
              SyscallFailsWithErrno(EINVAL));
}

TEST_F(SigtimedwaitTest, BadPointersAreEfault) {
  struct timespec zero = {};
  EXPECT_THAT(RawSigtimedwait(reinterpret_cast<sigset_t*>(8), nullptr, &zero),
              SyscallFailsWithErrno(EFAULT));
  sigset_t set = SignalSet({SIGUSR1});
  EXPECT_THAT(
      RawSigtimedwait(&set, nullptr, reinterpret_cast<struct timespec*>(8)),
      SyscallFailsWithErrno(EFAULT));
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
