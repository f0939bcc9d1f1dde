// timerfd_create(2), timerfd_settime(2), timerfd_gettime(2): expiration
// counts, periodic timers, absolute times, readiness and blocking reads
// (fs/timerfd.c).

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/signal_util.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

constexpr int64_t kNanosPerSecond = 1000000000;
constexpr int64_t kMillis = 1000000;

int64_t Now(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return ts.tv_sec * kNanosPerSecond + ts.tv_nsec;
}

struct timespec Ts(int64_t ns) {
  return {static_cast<time_t>(ns / kNanosPerSecond),
          static_cast<long>(ns % kNanosPerSecond)};
}

int64_t Ns(const struct timespec& ts) {
  return ts.tv_sec * kNanosPerSecond + ts.tv_nsec;
}

FileDescriptor NewTimerfd(clockid_t clock, int flags) {
  int fd = syscall(SYS_timerfd_create, clock, flags);
  EXPECT_THAT(fd, SyscallSucceeds());
  return FileDescriptor(fd);
}

long Settime(int fd, int flags, int64_t value, int64_t interval,
             struct itimerspec* old = nullptr) {
  struct itimerspec its = {Ts(interval), Ts(value)};
  return syscall(SYS_timerfd_settime, fd, flags, &its, old);
}

long Read64(int fd, uint64_t* v) { return read(fd, v, sizeof(*v)); }

TEST(TimerfdTest, CreateErrors) {
  EXPECT_THAT(syscall(SYS_timerfd_create, CLOCK_PROCESS_CPUTIME_ID, 0),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_timerfd_create, CLOCK_MONOTONIC_RAW, 0),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_timerfd_create, 99, 0),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_timerfd_create, CLOCK_MONOTONIC, O_APPEND),
              SyscallFailsWithErrno(EINVAL));
  for (clockid_t c : {CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_BOOTTIME}) {
    FileDescriptor fd = NewTimerfd(c, 0);
  }
}

TEST(TimerfdTest, Flags) {
  FileDescriptor fd = NewTimerfd(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  EXPECT_THAT(fcntl(fd.get(), F_GETFL),
              SyscallSucceedsWithValue(O_RDWR | O_NONBLOCK));
  EXPECT_THAT(fcntl(fd.get(), F_GETFD), SyscallSucceedsWithValue(FD_CLOEXEC));
}

TEST(TimerfdTest, DisarmedReadsNothing) {
  FileDescriptor fd = NewTimerfd(CLOCK_MONOTONIC, TFD_NONBLOCK);
  uint64_t v;
  EXPECT_THAT(Read64(fd.get(), &v), SyscallFailsWithErrno(EAGAIN));
  struct itimerspec its;
  ASSERT_THAT(syscall(SYS_timerfd_gettime, fd.get(), &its), SyscallSucceeds());
  EXPECT_EQ(Ns(its.it_value), 0);
  EXPECT_EQ(Ns(its.it_interval), 0);
}

TEST(TimerfdTest, SettimeErrors) {
  FileDescriptor fd = NewTimerfd(CLOCK_MONOTONIC, TFD_NONBLOCK);
  struct itimerspec bad = {{0, 0}, {0, kNanosPerSecond}};
  EXPECT_THAT(syscall(SYS_timerfd_settime, fd.get(), 0, &bad, nullptr),
              SyscallFailsWithErrno(EINVAL));
  bad = {{-1, 0}, {1, 0}};
  EXPECT_THAT(syscall(SYS_timerfd_settime, fd.get(), 0, &bad, nullptr),
              SyscallFailsWithErrno(EINVAL));
  struct itimerspec good = {{0, 0}, {1, 0}};
  EXPECT_THAT(syscall(SYS_timerfd_settime, fd.get(), 4, &good, nullptr),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_timerfd_settime, fd.get(), 0, nullptr, nullptr),
              SyscallFailsWithErrno(EFAULT));
  EXPECT_THAT(syscall(SYS_timerfd_settime, -1, 0, &good, nullptr),
              SyscallFailsWithErrno(EBADF));
  int efd = syscall(SYS_eventfd2, 0, 0);
  ASSERT_THAT(efd, SyscallSucceeds());
  FileDescriptor owned(efd);
  EXPECT_THAT(syscall(SYS_timerfd_settime, efd, 0, &good, nullptr),
              SyscallFailsWithErrno(EINVAL));
  struct itimerspec its;
  EXPECT_THAT(syscall(SYS_timerfd_gettime, efd, &its),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_timerfd_gettime, fd.get(), nullptr),
              SyscallFailsWithErrno(EFAULT));
}

TEST(TimerfdTest, OneShotExpires) {
  FileDescriptor fd = NewTimerfd(CLOCK_MONOTONIC, 0);
  const int64_t start = Now(CLOCK_MONOTONIC);
  ASSERT_THAT(Settime(fd.get(), 0, 20 * kMillis, 0), SyscallSucceeds());
  uint64_t v = 0;
  ASSERT_THAT(Read64(fd.get(), &v), SyscallSucceedsWithValue(8));
  EXPECT_EQ(v, 1u);
  EXPECT_GE(Now(CLOCK_MONOTONIC) - start, 20 * kMillis);
  struct itimerspec its;
  ASSERT_THAT(syscall(SYS_timerfd_gettime, fd.get(), &its), SyscallSucceeds());
  EXPECT_EQ(Ns(its.it_value), 0);
  ASSERT_THAT(fcntl(fd.get(), F_SETFL, O_NONBLOCK), SyscallSucceeds());
  EXPECT_THAT(Read64(fd.get(), &v), SyscallFailsWithErrno(EAGAIN));
}

TEST(TimerfdTest, ShortReadIsEinval) {
  FileDescriptor fd = NewTimerfd(CLOCK_MONOTONIC, TFD_NONBLOCK);
  char buf[7];
  EXPECT_THAT(read(fd.get(), buf, sizeof(buf)), SyscallFailsWithErrno(EINVAL));
  uint64_t v = 1;
  EXPECT_THAT(write(fd.get(), &v, sizeof(v)), SyscallFailsWithErrno(EINVAL));
}

// A periodic timer counts every period that passed since the last read.
TEST(TimerfdTest, PeriodicCountsExpirations) {
  FileDescriptor fd = NewTimerfd(CLOCK_MONOTONIC, 0);
  ASSERT_THAT(Settime(fd.get(), 0, 10 * kMillis, 10 * kMillis),
              SyscallSucceeds());
  usleep(55000);
  uint64_t v = 0;
  ASSERT_THAT(Read64(fd.get(), &v), SyscallSucceedsWithValue(8));
  EXPECT_GE(v, 5u);
  // And goes on.
  ASSERT_THAT(Read64(fd.get(), &v), SyscallSucceedsWithValue(8));
  EXPECT_GE(v, 1u);
  struct itimerspec its;
  ASSERT_THAT(syscall(SYS_timerfd_gettime, fd.get(), &its), SyscallSucceeds());
  EXPECT_EQ(Ns(its.it_interval), 10 * kMillis);
  EXPECT_GT(Ns(its.it_value), 0);
  EXPECT_LE(Ns(its.it_value), 10 * kMillis);
}

// An absolute time in the past expires at once; periods since then count.
TEST(TimerfdTest, AbsoluteInThePast) {
  FileDescriptor fd = NewTimerfd(CLOCK_MONOTONIC, TFD_NONBLOCK);
  const int64_t now = Now(CLOCK_MONOTONIC);
  ASSERT_THAT(Settime(fd.get(), TFD_TIMER_ABSTIME, now - 10 * kNanosPerSecond,
                      kNanosPerSecond),
              SyscallSucceeds());
  uint64_t v = 0;
  ASSERT_THAT(Read64(fd.get(), &v), SyscallSucceedsWithValue(8));
  EXPECT_GE(v, 10u);
  EXPECT_LE(v, 12u);
}

TEST(TimerfdTest, AbsoluteRealtime) {
  FileDescriptor fd = NewTimerfd(CLOCK_REALTIME, 0);
  const int64_t start = Now(CLOCK_MONOTONIC);
  ASSERT_THAT(Settime(fd.get(), TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET,
                      Now(CLOCK_REALTIME) + 20 * kMillis, 0),
              SyscallSucceeds());
  uint64_t v = 0;
  ASSERT_THAT(Read64(fd.get(), &v), SyscallSucceedsWithValue(8));
  EXPECT_EQ(v, 1u);
  EXPECT_GE(Now(CLOCK_MONOTONIC) - start, 15 * kMillis);
}

// settime reports the old setting and resets the count; zero disarms.
TEST(TimerfdTest, SettimeOldValueAndDisarm) {
  FileDescriptor fd = NewTimerfd(CLOCK_MONOTONIC, TFD_NONBLOCK);
  ASSERT_THAT(Settime(fd.get(), 0, 100 * kNanosPerSecond, kNanosPerSecond),
              SyscallSucceeds());
  struct itimerspec old;
  ASSERT_THAT(Settime(fd.get(), 0, 0, 0, &old), SyscallSucceeds());
  EXPECT_GT(Ns(old.it_value), 99 * kNanosPerSecond);
  EXPECT_LE(Ns(old.it_value), 100 * kNanosPerSecond);
  EXPECT_EQ(Ns(old.it_interval), kNanosPerSecond);
  struct itimerspec its;
  ASSERT_THAT(syscall(SYS_timerfd_gettime, fd.get(), &its), SyscallSucceeds());
  EXPECT_EQ(Ns(its.it_value), 0);

  // An expiration not yet read is dropped by a new setting.
  ASSERT_THAT(Settime(fd.get(), 0, 1, 0), SyscallSucceeds());
  struct pollfd pfd = {fd.get(), POLLIN, 0};
  ASSERT_THAT(poll(&pfd, 1, 1000), SyscallSucceedsWithValue(1));
  ASSERT_THAT(Settime(fd.get(), 0, 100 * kNanosPerSecond, 0),
              SyscallSucceeds());
  uint64_t v;
  EXPECT_THAT(Read64(fd.get(), &v), SyscallFailsWithErrno(EAGAIN));
}

TEST(TimerfdTest, PollAndEpollReadiness) {
  FileDescriptor fd = NewTimerfd(CLOCK_MONOTONIC, TFD_NONBLOCK);
  struct pollfd pfd = {fd.get(), POLLIN | POLLOUT, 0};
  ASSERT_THAT(poll(&pfd, 1, 0), SyscallSucceedsWithValue(0));
  int ep = syscall(SYS_epoll_create1, EPOLL_CLOEXEC);
  ASSERT_THAT(ep, SyscallSucceeds());
  FileDescriptor owned(ep);
  struct epoll_event ev = {};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.u64 = 3;
  ASSERT_THAT(epoll_ctl(ep, EPOLL_CTL_ADD, fd.get(), &ev), SyscallSucceeds());
  ASSERT_THAT(Settime(fd.get(), 0, 10 * kMillis, 0), SyscallSucceeds());
  // The expiry wakes a blocked epoll_wait.
  ASSERT_THAT(epoll_wait(ep, &ev, 1, 5000), SyscallSucceedsWithValue(1));
  EXPECT_EQ(ev.events, static_cast<uint32_t>(EPOLLIN));
  EXPECT_EQ(ev.data.u64, 3u);
  ASSERT_THAT(poll(&pfd, 1, 0), SyscallSucceedsWithValue(1));
  EXPECT_EQ(pfd.revents, POLLIN);
  uint64_t v;
  ASSERT_THAT(Read64(fd.get(), &v), SyscallSucceeds());
  ASSERT_THAT(poll(&pfd, 1, 0), SyscallSucceedsWithValue(0));
}

TEST(TimerfdTest, Lseek) {
  FileDescriptor fd = NewTimerfd(CLOCK_MONOTONIC, TFD_NONBLOCK);
  EXPECT_THAT(lseek(fd.get(), 5, SEEK_SET), SyscallSucceedsWithValue(0));
}

std::atomic<int> handled{0};
void CountingHandler(int) { handled++; }

TEST(TimerfdTest, BlockingReadInterrupted) {
  struct sigaction sa = {};
  sa.sa_handler = CountingHandler;
  ScopedSigaction scoped(SIGALRM, sa);
  FileDescriptor fd = NewTimerfd(CLOCK_MONOTONIC, 0);
  ASSERT_THAT(Settime(fd.get(), 0, 100 * kNanosPerSecond, 0),
              SyscallSucceeds());
  struct itimerval it = {{0, 0}, {0, 20000}};
  ASSERT_THAT(setitimer(ITIMER_REAL, &it, nullptr), SyscallSucceeds());
  uint64_t v;
  EXPECT_THAT(Read64(fd.get(), &v), SyscallFailsWithErrno(EINTR));
}

TEST(TimerfdTest, ProcFdName) {
  FileDescriptor fd = NewTimerfd(CLOCK_MONOTONIC, 0);
  char path[64], target[64] = {};
  snprintf(path, sizeof(path), "/proc/self/fd/%d", fd.get());
  ASSERT_THAT(readlink(path, target, sizeof(target) - 1), SyscallSucceeds());
  EXPECT_STREQ(target, "anon_inode:[timerfd]");
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
