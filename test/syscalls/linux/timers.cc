// POSIX timers: timer_create(2), timer_settime(2), timer_gettime(2),
// timer_getoverrun(2), timer_delete(2), called raw so that the kernel's
// timer ids are seen (glibc wraps them for SIGEV_THREAD).

#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/signal_util.h"
#include "test/util/test_util.h"

#ifndef SIGEV_THREAD_ID
#define SIGEV_THREAD_ID 4
#endif

namespace pyvisor {
namespace testing {
namespace {

int64_t MonotonicNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t Ns(const struct timespec& ts) {
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

struct timespec Ts(int64_t ns) {
  return {static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
}

// The kernel's struct sigevent, with the thread id where glibc hides it.
struct KernelSigevent {
  union sigval value;
  int signo;
  int notify;
  int tid;
  int pad[11];
};

long TimerCreate(clockid_t clock, KernelSigevent* sev, int* id) {
  return syscall(SYS_timer_create, clock, sev, id);
}

long TimerSettime(int id, int flags, int64_t value, int64_t interval,
                  struct itimerspec* old = nullptr) {
  struct itimerspec its = {Ts(interval), Ts(value)};
  return syscall(SYS_timer_settime, id, flags, &its, old);
}

long TimerGettime(int id, struct itimerspec* its) {
  return syscall(SYS_timer_gettime, id, its);
}

long TimerDelete(int id) { return syscall(SYS_timer_delete, id); }

KernelSigevent SignalEvent(int signo, int value) {
  KernelSigevent sev = {};
  sev.notify = SIGEV_SIGNAL;
  sev.signo = signo;
  sev.value.sival_int = value;
  return sev;
}

// Waits up to `timeout_ns` for signo, which must be blocked.
int WaitFor(int signo, siginfo_t* info, int64_t timeout_ns = 10000000000LL) {
  sigset_t set = SignalSet({signo});
  struct timespec ts = Ts(timeout_ns);
  return sigtimedwait(&set, info, &ts);
}

class TimersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sigset_t set = SignalSet({SIGALRM, SIGUSR1, SIGRTMIN});
    ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &set, &saved_), 0);
  }
  void TearDown() override {
    for (int id : ids_) TimerDelete(id);
    sigset_t set = SignalSet({SIGALRM, SIGUSR1, SIGRTMIN});
    struct timespec zero = {};
    while (sigtimedwait(&set, nullptr, &zero) > 0) {
    }
    EXPECT_EQ(pthread_sigmask(SIG_SETMASK, &saved_, nullptr), 0);
  }

  // Creates a timer that TearDown deletes.
  int Create(clockid_t clock, KernelSigevent* sev) {
    int id = -1;
    EXPECT_THAT(TimerCreate(clock, sev, &id), SyscallSucceeds());
    ids_.push_back(id);
    return id;
  }

 private:
  sigset_t saved_;
  std::vector<int> ids_;
};

TEST_F(TimersTest, DefaultEventIsSigalrmWithTimerId) {
  int id = Create(CLOCK_MONOTONIC, nullptr);
  ASSERT_THAT(TimerSettime(id, 0, 1000000, 0), SyscallSucceeds());
  siginfo_t info = {};
  ASSERT_THAT(WaitFor(SIGALRM, &info), SyscallSucceedsWithValue(SIGALRM));
  EXPECT_EQ(info.si_code, SI_TIMER);
  EXPECT_EQ(info.si_timerid, id);
  EXPECT_EQ(info.si_value.sival_int, id);
  EXPECT_EQ(info.si_overrun, 0);
}

TEST_F(TimersTest, SignalCarriesValue) {
  KernelSigevent sev = SignalEvent(SIGUSR1, 1234);
  int id = Create(CLOCK_REALTIME, &sev);
  ASSERT_THAT(TimerSettime(id, 0, 1000000, 0), SyscallSucceeds());
  siginfo_t info = {};
  ASSERT_THAT(WaitFor(SIGUSR1, &info), SyscallSucceedsWithValue(SIGUSR1));
  EXPECT_EQ(info.si_code, SI_TIMER);
  EXPECT_EQ(info.si_value.sival_int, 1234);
}

TEST_F(TimersTest, IdsAreDistinct) {
  KernelSigevent sev = SignalEvent(SIGUSR1, 0);
  int a = Create(CLOCK_MONOTONIC, &sev);
  int b = Create(CLOCK_MONOTONIC, &sev);
  EXPECT_NE(a, b);
  EXPECT_GE(a, 0);
  EXPECT_GE(b, 0);
}

TEST_F(TimersTest, GettimeOfDisarmedTimer) {
  KernelSigevent sev = SignalEvent(SIGUSR1, 0);
  int id = Create(CLOCK_MONOTONIC, &sev);
  struct itimerspec its;
  memset(&its, 0xff, sizeof(its));
  ASSERT_THAT(TimerGettime(id, &its), SyscallSucceeds());
  EXPECT_EQ(Ns(its.it_value), 0);
  EXPECT_EQ(Ns(its.it_interval), 0);
}

TEST_F(TimersTest, GettimeCountsDown) {
  KernelSigevent sev = SignalEvent(SIGUSR1, 0);
  int id = Create(CLOCK_MONOTONIC, &sev);
  ASSERT_THAT(TimerSettime(id, 0, 10000000000LL, 3000000000LL), SyscallSucceeds());
  struct itimerspec its;
  ASSERT_THAT(TimerGettime(id, &its), SyscallSucceeds());
  EXPECT_LE(Ns(its.it_value), 10000000000LL);
  EXPECT_GT(Ns(its.it_value), 9000000000LL);
  EXPECT_EQ(Ns(its.it_interval), 3000000000LL);
  // Rearming returns the old setting.
  struct itimerspec old;
  ASSERT_THAT(TimerSettime(id, 0, 0, 0, &old), SyscallSucceeds());
  EXPECT_GT(Ns(old.it_value), 9000000000LL);
  EXPECT_EQ(Ns(old.it_interval), 3000000000LL);
  ASSERT_THAT(TimerGettime(id, &its), SyscallSucceeds());
  EXPECT_EQ(Ns(its.it_value), 0);
}

TEST_F(TimersTest, SigevNoneOneShotExpires) {
  KernelSigevent sev = {};
  sev.notify = SIGEV_NONE;
  int id = Create(CLOCK_MONOTONIC, &sev);
  ASSERT_THAT(TimerSettime(id, 0, 20000000, 0), SyscallSucceeds());
  struct itimerspec its;
  ASSERT_THAT(TimerGettime(id, &its), SyscallSucceeds());
  EXPECT_GT(Ns(its.it_value), 0);
  struct timespec ts = {0, 40000000};
  nanosleep(&ts, nullptr);
  ASSERT_THAT(TimerGettime(id, &its), SyscallSucceeds());
  EXPECT_EQ(Ns(its.it_value), 0);
}

TEST_F(TimersTest, SigevNonePeriodicKeepsCycling) {
  KernelSigevent sev = {};
  sev.notify = SIGEV_NONE;
  int id = Create(CLOCK_MONOTONIC, &sev);
  ASSERT_THAT(TimerSettime(id, 0, 5000000, 10000000), SyscallSucceeds());
  struct timespec ts = {0, 30000000};
  nanosleep(&ts, nullptr);
  struct itimerspec its;
  ASSERT_THAT(TimerGettime(id, &its), SyscallSucceeds());
  EXPECT_GT(Ns(its.it_value), 0);
  EXPECT_LE(Ns(its.it_value), 10000000);
  EXPECT_EQ(Ns(its.it_interval), 10000000);
}

TEST_F(TimersTest, PeriodicOverrunsWhileBlocked) {
  KernelSigevent sev = SignalEvent(SIGUSR1, 0);
  int id = Create(CLOCK_MONOTONIC, &sev);
  ASSERT_THAT(TimerSettime(id, 0, 1000000, 1000000), SyscallSucceeds());
  struct timespec ts = {0, 100000000};
  nanosleep(&ts, nullptr);
  siginfo_t info = {};
  ASSERT_THAT(WaitFor(SIGUSR1, &info), SyscallSucceedsWithValue(SIGUSR1));
  // About 100 expirations, one signal: the rest are overruns.
  EXPECT_GE(info.si_overrun, 50);
  EXPECT_THAT(syscall(SYS_timer_getoverrun, id),
              SyscallSucceedsWithValue(info.si_overrun));
  // The timer goes on.
  ASSERT_THAT(WaitFor(SIGUSR1, &info), SyscallSucceedsWithValue(SIGUSR1));
  EXPECT_LT(info.si_overrun, 50);
}

TEST_F(TimersTest, AbsoluteTime) {
  KernelSigevent sev = SignalEvent(SIGUSR1, 0);
  int id = Create(CLOCK_MONOTONIC, &sev);
  int64_t start = MonotonicNs();
  ASSERT_THAT(TimerSettime(id, TIMER_ABSTIME, start + 20000000, 0),
              SyscallSucceeds());
  ASSERT_THAT(WaitFor(SIGUSR1, nullptr), SyscallSucceedsWithValue(SIGUSR1));
  EXPECT_GE(MonotonicNs() - start, 20000000);
}

TEST_F(TimersTest, AbsoluteRealtime) {
  KernelSigevent sev = SignalEvent(SIGUSR1, 0);
  int id = Create(CLOCK_REALTIME, &sev);
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  ASSERT_THAT(TimerSettime(id, TIMER_ABSTIME, Ns(now) + 10000000, 0),
              SyscallSucceeds());
  ASSERT_THAT(WaitFor(SIGUSR1, nullptr), SyscallSucceedsWithValue(SIGUSR1));
}

TEST_F(TimersTest, AbsoluteTimeInThePastFiresAtOnce) {
  KernelSigevent sev = SignalEvent(SIGUSR1, 0);
  int id = Create(CLOCK_MONOTONIC, &sev);
  ASSERT_THAT(TimerSettime(id, TIMER_ABSTIME, 1, 0), SyscallSucceeds());
  ASSERT_THAT(WaitFor(SIGUSR1, nullptr, 5000000000LL),
              SyscallSucceedsWithValue(SIGUSR1));
}

TEST_F(TimersTest, ThreadIdTargetsThread) {
  KernelSigevent sev = SignalEvent(SIGUSR1, 5);
  sev.notify = SIGEV_THREAD_ID;
  sev.tid = syscall(SYS_gettid);
  int id = Create(CLOCK_MONOTONIC, &sev);
  ASSERT_THAT(TimerSettime(id, 0, 1000000, 0), SyscallSucceeds());
  siginfo_t info = {};
  ASSERT_THAT(WaitFor(SIGUSR1, &info), SyscallSucceedsWithValue(SIGUSR1));
  EXPECT_EQ(info.si_value.sival_int, 5);
}

TEST_F(TimersTest, ProcessCputimeTimer) {
  KernelSigevent sev = SignalEvent(SIGUSR1, 0);
  int id = Create(CLOCK_PROCESS_CPUTIME_ID, &sev);
  ASSERT_THAT(TimerSettime(id, 0, 20000000, 0), SyscallSucceeds());
  sigset_t set = SignalSet({SIGUSR1});
  struct timespec zero = {};
  int64_t end = MonotonicNs() + 10000000000LL;
  int got = -1;
  volatile uint64_t sink = 0;
  while (got < 0 && MonotonicNs() < end) {
    for (int i = 0; i < 100000; i++) sink = sink + i;
    got = sigtimedwait(&set, nullptr, &zero);
  }
  EXPECT_EQ(got, SIGUSR1);
}

TEST_F(TimersTest, ThreadCputimeTimer) {
  KernelSigevent sev = SignalEvent(SIGUSR1, 0);
  int id = Create(CLOCK_THREAD_CPUTIME_ID, &sev);
  ASSERT_THAT(TimerSettime(id, 0, 20000000, 0), SyscallSucceeds());
  sigset_t set = SignalSet({SIGUSR1});
  struct timespec zero = {};
  int64_t end = MonotonicNs() + 10000000000LL;
  int got = -1;
  volatile uint64_t sink = 0;
  while (got < 0 && MonotonicNs() < end) {
    for (int i = 0; i < 100000; i++) sink = sink + i;
    got = sigtimedwait(&set, nullptr, &zero);
  }
  EXPECT_EQ(got, SIGUSR1);
}

TEST_F(TimersTest, DeleteThenUseIsEinval) {
  KernelSigevent sev = SignalEvent(SIGUSR1, 0);
  int id = -1;
  ASSERT_THAT(TimerCreate(CLOCK_MONOTONIC, &sev, &id), SyscallSucceeds());
  ASSERT_THAT(TimerDelete(id), SyscallSucceeds());
  struct itimerspec its;
  EXPECT_THAT(TimerGettime(id, &its), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(TimerSettime(id, 0, 1000, 0), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_timer_getoverrun, id), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(TimerDelete(id), SyscallFailsWithErrno(EINVAL));
}

TEST_F(TimersTest, DeleteStopsTheTimer) {
  KernelSigevent sev = SignalEvent(SIGUSR1, 0);
  int id = -1;
  ASSERT_THAT(TimerCreate(CLOCK_MONOTONIC, &sev, &id), SyscallSucceeds());
  ASSERT_THAT(TimerSettime(id, 0, 20000000, 0), SyscallSucceeds());
  ASSERT_THAT(TimerDelete(id), SyscallSucceeds());
  EXPECT_THAT(WaitFor(SIGUSR1, nullptr, 60000000), SyscallFailsWithErrno(EAGAIN));
}

TEST_F(TimersTest, BadIdIsEinval) {
  struct itimerspec its;
  EXPECT_THAT(TimerGettime(123456, &its), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(TimerGettime(-1, &its), SyscallFailsWithErrno(EINVAL));
}

TEST_F(TimersTest, InvalidClocks) {
  int id;
  KernelSigevent sev = SignalEvent(SIGUSR1, 0);
  EXPECT_THAT(TimerCreate(12345, &sev, &id), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(TimerCreate(CLOCK_MONOTONIC_RAW, &sev, &id),
              SyscallFailsWithErrno(EOPNOTSUPP));
  EXPECT_THAT(TimerCreate(CLOCK_MONOTONIC_COARSE, &sev, &id),
              SyscallFailsWithErrno(EOPNOTSUPP));
}

TEST_F(TimersTest, InvalidEvents) {
  int id;
  KernelSigevent sev = SignalEvent(0, 0);
  EXPECT_THAT(TimerCreate(CLOCK_MONOTONIC, &sev, &id),
              SyscallFailsWithErrno(EINVAL));
  sev = SignalEvent(65, 0);
  EXPECT_THAT(TimerCreate(CLOCK_MONOTONIC, &sev, &id),
              SyscallFailsWithErrno(EINVAL));
  sev = SignalEvent(SIGUSR1, 0);
  sev.notify = 99;
  EXPECT_THAT(TimerCreate(CLOCK_MONOTONIC, &sev, &id),
              SyscallFailsWithErrno(EINVAL));
  sev = SignalEvent(SIGUSR1, 0);
  sev.notify = SIGEV_THREAD_ID;
  sev.tid = 4194303;
  EXPECT_THAT(TimerCreate(CLOCK_MONOTONIC, &sev, &id),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(TimerCreate(CLOCK_MONOTONIC, reinterpret_cast<KernelSigevent*>(8),
                          &id),
              SyscallFailsWithErrno(EFAULT));
}

TEST_F(TimersTest, InvalidItimerspecIsEinval) {
  KernelSigevent sev = SignalEvent(SIGUSR1, 0);
  int id = Create(CLOCK_MONOTONIC, &sev);
  struct itimerspec its = {{0, 0}, {0, 1000000000}};
  EXPECT_THAT(syscall(SYS_timer_settime, id, 0, &its, nullptr),
              SyscallFailsWithErrno(EINVAL));
  its = {{0, -1}, {1, 0}};
  EXPECT_THAT(syscall(SYS_timer_settime, id, 0, &its, nullptr),
              SyscallFailsWithErrno(EINVAL));
  its = {{0, 0}, {-1, 0}};
  EXPECT_THAT(syscall(SYS_timer_settime, id, 0, &its, nullptr),
              SyscallFailsWithErrno(EINVAL));
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
