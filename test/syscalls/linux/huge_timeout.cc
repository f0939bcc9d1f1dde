// Blocking calls given timeouts far beyond what a host timer takes (years to
// centuries): each sleeps until a signal interrupts it, and timers armed that
// far ahead stay armed without disturbing the ones that fire soon.

#include <errno.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <climits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

// Far enough to overflow a double of seconds turned into milliseconds or
// nanoseconds, and a C int of milliseconds.
constexpr time_t kFar = LLONG_MAX / 2;
// Linux caps a time at KTIME_MAX nanoseconds (about 292 years), so what
// reads back is at least this many seconds.
constexpr time_t kCenturies = 9000000000;

std::atomic<int> alarms{0};

void OnAlarm(int) { alarms++; }

// Interrupts the calling thread's blocking call after 100 ms with a SIGALRM
// whose handler does not restart it; disarms on destruction.
class AlarmSoon {
 public:
  AlarmSoon() {
    struct sigaction sa = {};
    sa.sa_handler = OnAlarm;
    EXPECT_EQ(sigaction(SIGALRM, &sa, &old_), 0);
    struct itimerval it = {{0, 0}, {0, 100000}};
    EXPECT_EQ(setitimer(ITIMER_REAL, &it, nullptr), 0);
  }
  ~AlarmSoon() {
    struct itimerval it = {};
    setitimer(ITIMER_REAL, &it, nullptr);
    sigaction(SIGALRM, &old_, nullptr);
  }

 private:
  struct sigaction old_;
};

TEST(HugeTimeoutTest, Nanosleep) {
  AlarmSoon alarm;
  const struct timespec req = {kFar, 0};
  struct timespec rem = {};
  EXPECT_THAT(syscall(SYS_nanosleep, &req, &rem), SyscallFailsWithErrno(EINTR));
  EXPECT_GT(rem.tv_sec, kCenturies);
}

TEST(HugeTimeoutTest, ClockNanosleepRelative) {
  AlarmSoon alarm;
  const struct timespec req = {kFar, 999999999};
  EXPECT_THAT(syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &req, nullptr),
              SyscallFailsWithErrno(EINTR));
}

TEST(HugeTimeoutTest, ClockNanosleepAbsolute) {
  AlarmSoon alarm;
  const struct timespec req = {LLONG_MAX, 999999999};
  EXPECT_THAT(syscall(SYS_clock_nanosleep, CLOCK_REALTIME, TIMER_ABSTIME, &req,
                      nullptr),
              SyscallFailsWithErrno(EINTR));
}

TEST(HugeTimeoutTest, Ppoll) {
  AlarmSoon alarm;
  struct timespec ts = {kFar, 0};
  EXPECT_THAT(syscall(SYS_ppoll, nullptr, 0, &ts, nullptr, 8),
              SyscallFailsWithErrno(EINTR));
}

TEST(HugeTimeoutTest, Select) {
  AlarmSoon alarm;
  struct timeval tv = {kFar, 0};
  EXPECT_THAT(syscall(SYS_select, 0, nullptr, nullptr, nullptr, &tv),
              SyscallFailsWithErrno(EINTR));
}

TEST(HugeTimeoutTest, Pselect) {
  AlarmSoon alarm;
  struct timespec ts = {kFar, 0};
  EXPECT_THAT(syscall(SYS_pselect6, 0, nullptr, nullptr, nullptr, &ts, nullptr),
              SyscallFailsWithErrno(EINTR));
}

TEST(HugeTimeoutTest, EpollPwait2) {
  int ep = epoll_create1(0);
  ASSERT_THAT(ep, SyscallSucceeds());
  struct epoll_event ev;
  struct timespec ts = {kFar, 0};
  {
    AlarmSoon alarm;
    EXPECT_THAT(syscall(SYS_epoll_pwait2, ep, &ev, 1, &ts, nullptr, 8),
                SyscallFailsWithErrno(EINTR));
  }
  close(ep);
}

TEST(HugeTimeoutTest, FutexWait) {
  AlarmSoon alarm;
  int word = 0;
  struct timespec ts = {kFar, 0};
  EXPECT_THAT(syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, &ts, nullptr, 0),
              SyscallFailsWithErrno(EINTR));
}

TEST(HugeTimeoutTest, Sigtimedwait) {
  AlarmSoon alarm;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR2);
  struct timespec ts = {kFar, 0};
  EXPECT_THAT(syscall(SYS_rt_sigtimedwait, &set, nullptr, &ts, 8),
              SyscallFailsWithErrno(EINTR));
}

// A timer armed centuries ahead reads back as armed and does not stop a
// short one from firing.
TEST(HugeTimeoutTest, FarTimersStayArmed) {
  int far = timerfd_create(CLOCK_MONOTONIC, 0);
  ASSERT_THAT(far, SyscallSucceeds());
  struct itimerspec spec = {{kFar, 0}, {kFar, 0}};
  ASSERT_THAT(timerfd_settime(far, 0, &spec, nullptr), SyscallSucceeds());
  struct itimerspec cur;
  ASSERT_THAT(timerfd_gettime(far, &cur), SyscallSucceeds());
  EXPECT_GT(cur.it_value.tv_sec, kCenturies);

  timer_t posix;
  struct sigevent sev = {};
  sev.sigev_notify = SIGEV_NONE;
  ASSERT_THAT(syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, &posix),
              SyscallSucceeds());
  ASSERT_THAT(syscall(SYS_timer_settime, posix, 0, &spec, nullptr),
              SyscallSucceeds());

  struct itimerval itv = {{0, 0}, {kFar, 0}};
  ASSERT_THAT(setitimer(ITIMER_VIRTUAL, &itv, nullptr), SyscallSucceeds());

  int soon = timerfd_create(CLOCK_MONOTONIC, 0);
  ASSERT_THAT(soon, SyscallSucceeds());
  struct itimerspec short_spec = {{0, 0}, {0, 20000000}};
  ASSERT_THAT(timerfd_settime(soon, 0, &short_spec, nullptr),
              SyscallSucceeds());
  uint64_t n = 0;
  EXPECT_THAT(read(soon, &n, sizeof(n)), SyscallSucceedsWithValue(sizeof(n)));
  EXPECT_EQ(n, 1);

  itv = {};
  setitimer(ITIMER_VIRTUAL, &itv, nullptr);
  syscall(SYS_timer_delete, posix);
  close(soon);
  close(far);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
