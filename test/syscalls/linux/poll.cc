// poll(2) and ppoll(2): revents, bad and negative descriptors, timeouts, the
// temporary signal mask and interruption (fs/select.c).
//
// The readiness sources are eventfds, pipes and standard output. Cases
// woken by a second thread need clone(2) and are skipped in the sandbox for
// now.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/signal_util.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

constexpr int64_t kNanosPerSecond = 1000000000;
constexpr int kClosedFd = 1000;
constexpr size_t kSigsetSize = sizeof(uint64_t);

int64_t MonotonicNanos() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * kNanosPerSecond + ts.tv_nsec;
}

long Poll(struct pollfd* fds, unsigned long n, int timeout) {
  return syscall(SYS_poll, fds, n, timeout);
}

long Ppoll(struct pollfd* fds, unsigned long n, struct timespec* ts,
           const uint64_t* mask, size_t size = kSigsetSize) {
  return syscall(SYS_ppoll, fds, n, ts, mask, size);
}

FileDescriptor NewEventfd(unsigned int initval) {
  int fd = syscall(SYS_eventfd2, initval, EFD_NONBLOCK | EFD_CLOEXEC);
  EXPECT_THAT(fd, SyscallSucceeds());
  return FileDescriptor(fd);
}

long Tgkill(int sig) {
  return syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), sig);
}

uint64_t Bit(int sig) { return uint64_t{1} << (sig - 1); }

uint64_t CurrentMask() {
  uint64_t m = 0;
  EXPECT_THAT(syscall(SYS_rt_sigprocmask, SIG_BLOCK, nullptr, &m, kSigsetSize),
              SyscallSucceeds());
  return m;
}

std::atomic<int> handled{0};
void CountingHandler(int) { handled++; }

TEST(PollTest, NothingToPollReturnsZero) {
  EXPECT_THAT(Poll(nullptr, 0, 0), SyscallSucceedsWithValue(0));
}

TEST(PollTest, TimeoutSleeps) {
  const int64_t start = MonotonicNanos();
  EXPECT_THAT(Poll(nullptr, 0, 20), SyscallSucceedsWithValue(0));
  EXPECT_GE(MonotonicNanos() - start, 20 * 1000 * 1000);
}

TEST(PollTest, NegativeFdIsIgnored) {
  struct pollfd pfd = {-1, POLLIN | POLLOUT, 0x7777};
  EXPECT_THAT(Poll(&pfd, 1, 0), SyscallSucceedsWithValue(0));
  EXPECT_EQ(pfd.revents, 0);
  // Even with a timeout, nothing wakes it: it times out.
  pfd.fd = -42;
  EXPECT_THAT(Poll(&pfd, 1, 1), SyscallSucceedsWithValue(0));
}

TEST(PollTest, ClosedFdIsPollnval) {
  struct pollfd pfd = {kClosedFd, POLLIN, 0};
  ASSERT_THAT(Poll(&pfd, 1, 0), SyscallSucceedsWithValue(1));
  EXPECT_EQ(pfd.revents, POLLNVAL);
  // POLLNVAL is reported even when no event was asked for.
  pfd.events = 0;
  ASSERT_THAT(Poll(&pfd, 1, -1), SyscallSucceedsWithValue(1));
  EXPECT_EQ(pfd.revents, POLLNVAL);
}

TEST(PollTest, OnlyRequestedEventsAreReported) {
  FileDescriptor efd = NewEventfd(1);
  struct pollfd pfd = {efd.get(), POLLIN, 0};
  ASSERT_THAT(Poll(&pfd, 1, 0), SyscallSucceedsWithValue(1));
  EXPECT_EQ(pfd.revents, POLLIN);
  pfd.events = POLLOUT;
  ASSERT_THAT(Poll(&pfd, 1, 0), SyscallSucceedsWithValue(1));
  EXPECT_EQ(pfd.revents, POLLOUT);
  pfd.events = POLLPRI;
  ASSERT_THAT(Poll(&pfd, 1, 0), SyscallSucceedsWithValue(0));
  EXPECT_EQ(pfd.revents, 0);
}

// The result counts descriptors with events, not events.
TEST(PollTest, CountsDescriptors) {
  FileDescriptor ready = NewEventfd(1);
  FileDescriptor empty = NewEventfd(0);
  struct pollfd pfds[] = {
      {ready.get(), POLLIN | POLLOUT, 0},
      {empty.get(), POLLIN, 0},
      {-1, POLLIN, 0},
      {ready.get(), POLLIN, 0},
      {kClosedFd, POLLIN, 0},
  };
  ASSERT_THAT(Poll(pfds, 5, 0), SyscallSucceedsWithValue(3));
  EXPECT_EQ(pfds[0].revents, POLLIN | POLLOUT);
  EXPECT_EQ(pfds[1].revents, 0);
  EXPECT_EQ(pfds[2].revents, 0);
  EXPECT_EQ(pfds[3].revents, POLLIN);
  EXPECT_EQ(pfds[4].revents, POLLNVAL);
}

TEST(PollTest, NotReadyTimesOut) {
  FileDescriptor efd = NewEventfd(0);
  struct pollfd pfd = {efd.get(), POLLIN, 0};
  const int64_t start = MonotonicNanos();
  ASSERT_THAT(Poll(&pfd, 1, 10), SyscallSucceedsWithValue(0));
  EXPECT_GE(MonotonicNanos() - start, 10 * 1000 * 1000);
  EXPECT_EQ(pfd.revents, 0);
}

TEST(PollTest, BadAddressIsEfault) {
  EXPECT_THAT(Poll(nullptr, 1, 0), SyscallFailsWithErrno(EFAULT));
  EXPECT_THAT(Poll(reinterpret_cast<struct pollfd*>(8), 1, 0),
              SyscallFailsWithErrno(EFAULT));
}

class ScopedNofile {
 public:
  explicit ScopedNofile(rlim_t soft) {
    EXPECT_THAT(getrlimit(RLIMIT_NOFILE, &old_), SyscallSucceeds());
    struct rlimit rl = old_;
    rl.rlim_cur = soft;
    EXPECT_THAT(setrlimit(RLIMIT_NOFILE, &rl), SyscallSucceeds());
  }
  ~ScopedNofile() {
    EXPECT_THAT(setrlimit(RLIMIT_NOFILE, &old_), SyscallSucceeds());
  }

 private:
  struct rlimit old_;
};

TEST(PollTest, MoreFdsThanRlimitIsEinval) {
  std::vector<struct pollfd> pfds(17, {-1, 0, 0});
  ScopedNofile limit(16);
  EXPECT_THAT(Poll(pfds.data(), 17, 0), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(Poll(pfds.data(), 16, 0), SyscallSucceedsWithValue(0));
}

// Standard output is a host descriptor in the sandbox.
TEST(PollTest, StdoutIsWritable) {
  struct pollfd pfd = {1, POLLOUT, 0};
  ASSERT_THAT(Poll(&pfd, 1, 1000), SyscallSucceedsWithValue(1));
  EXPECT_TRUE(pfd.revents & POLLOUT);
}

TEST(PpollTest, InvalidTimespecIsEinval) {
  struct timespec cases[] = {
      {0, kNanosPerSecond},
      {0, -1},
      {-1, 0},
  };
  for (struct timespec& ts : cases) {
    EXPECT_THAT(Ppoll(nullptr, 0, &ts, nullptr), SyscallFailsWithErrno(EINVAL))
        << ts.tv_sec << "." << ts.tv_nsec;
  }
}

TEST(PpollTest, NullTimeoutWithReadyFdReturns) {
  FileDescriptor efd = NewEventfd(1);
  struct pollfd pfd = {efd.get(), POLLIN, 0};
  EXPECT_THAT(Ppoll(&pfd, 1, nullptr, nullptr), SyscallSucceedsWithValue(1));
  EXPECT_EQ(pfd.revents, POLLIN);
}

TEST(PpollTest, TimeoutSleeps) {
  struct timespec ts = {0, 10 * 1000 * 1000};
  const int64_t start = MonotonicNanos();
  EXPECT_THAT(Ppoll(nullptr, 0, &ts, nullptr), SyscallSucceedsWithValue(0));
  EXPECT_GE(MonotonicNanos() - start, 10 * 1000 * 1000);
  // The time left is written back: none.
  EXPECT_EQ(ts.tv_sec, 0);
  EXPECT_EQ(ts.tv_nsec, 0);
}

// The raw system call writes the time left back (poll_select_finish).
TEST(PpollTest, RemainingTimeIsWrittenBack) {
  FileDescriptor efd = NewEventfd(1);
  struct pollfd pfd = {efd.get(), POLLIN, 0};
  struct timespec ts = {5, 0};
  ASSERT_THAT(Ppoll(&pfd, 1, &ts, nullptr), SyscallSucceedsWithValue(1));
  EXPECT_TRUE(ts.tv_sec < 5 || (ts.tv_sec == 5 && ts.tv_nsec == 0));
  EXPECT_GE(ts.tv_sec, 4);
  EXPECT_GE(ts.tv_nsec, 0);
  EXPECT_LT(ts.tv_nsec, kNanosPerSecond);
}

TEST(PpollTest, BadSigsetSizeIsEinval) {
  uint64_t mask = 0;
  struct timespec ts = {0, 0};
  EXPECT_THAT(Ppoll(nullptr, 0, &ts, &mask, 4), SyscallFailsWithErrno(EINVAL));
  // Without a mask the size is not looked at.
  EXPECT_THAT(Ppoll(nullptr, 0, &ts, nullptr, 4), SyscallSucceedsWithValue(0));
}

TEST(PpollTest, BadSigmaskAddressIsEfault) {
  struct timespec ts = {0, 0};
  EXPECT_THAT(Ppoll(nullptr, 0, &ts, reinterpret_cast<uint64_t*>(8)),
              SyscallFailsWithErrno(EFAULT));
}

// The temporary mask holds only during the call.
TEST(PpollTest, MaskIsRestored) {
  ScopedSignalMask block(SIG_BLOCK, SignalSet({SIGUSR1}));
  const uint64_t before = CurrentMask();
  uint64_t mask = Bit(SIGUSR2);
  struct timespec ts = {0, 1000};
  ASSERT_THAT(Ppoll(nullptr, 0, &ts, &mask), SyscallSucceedsWithValue(0));
  EXPECT_EQ(CurrentMask(), before);
}

// A pending signal that the temporary mask unblocks interrupts the call;
// the handler runs, and the old mask is back afterwards. Even SA_RESTART
// does not restart ppoll: it returns -ERESTARTNOHAND.
TEST(PpollTest, SignalUnblockedByMaskInterrupts) {
  struct sigaction sa = {};
  sa.sa_handler = CountingHandler;
  sa.sa_flags = SA_RESTART;
  ScopedSigaction scoped(SIGUSR1, sa);
  ScopedSignalMask block(SIG_BLOCK, SignalSet({SIGUSR1}));
  const uint64_t before = CurrentMask();
  handled = 0;
  ASSERT_THAT(Tgkill(SIGUSR1), SyscallSucceeds());
  EXPECT_EQ(handled, 0);

  uint64_t mask = 0;
  struct timespec ts = {10, 0};
  EXPECT_THAT(Ppoll(nullptr, 0, &ts, &mask), SyscallFailsWithErrno(EINTR));
  EXPECT_EQ(handled, 1);
  EXPECT_EQ(CurrentMask(), before);
}

// The same with a zero timeout: a pending signal still wins over "nothing
// ready" (do_poll checks signal_pending before it looks at the timeout).
TEST(PpollTest, SignalInterruptsZeroTimeout) {
  struct sigaction sa = {};
  sa.sa_handler = CountingHandler;
  ScopedSigaction scoped(SIGUSR1, sa);
  ScopedSignalMask block(SIG_BLOCK, SignalSet({SIGUSR1}));
  handled = 0;
  ASSERT_THAT(Tgkill(SIGUSR1), SyscallSucceeds());
  uint64_t mask = 0;
  struct timespec ts = {0, 0};
  EXPECT_THAT(Ppoll(nullptr, 0, &ts, &mask), SyscallFailsWithErrno(EINTR));
  EXPECT_EQ(handled, 1);
}

// A ready descriptor wins over a pending signal, and the signal stays
// pending under the restored mask.
TEST(PpollTest, ReadyFdWinsOverSignal) {
  struct sigaction sa = {};
  sa.sa_handler = CountingHandler;
  ScopedSigaction scoped(SIGUSR1, sa);
  handled = 0;
  {
    ScopedSignalMask block(SIG_BLOCK, SignalSet({SIGUSR1}));
    ASSERT_THAT(Tgkill(SIGUSR1), SyscallSucceeds());
    FileDescriptor efd = NewEventfd(1);
    struct pollfd pfd = {efd.get(), POLLIN, 0};
    uint64_t mask = 0;
    ASSERT_THAT(Ppoll(&pfd, 1, nullptr, &mask), SyscallSucceedsWithValue(1));
    EXPECT_EQ(handled, 0);
    sigset_t pending;
    ASSERT_THAT(sigpending(&pending), SyscallSucceeds());
    EXPECT_TRUE(sigismember(&pending, SIGUSR1));
  }
  // Unblocking delivers it.
  EXPECT_EQ(handled, 1);
}

// A signal that is ignored when it is taken does not end the call: ppoll
// restarts transparently and times out.
TEST(PpollTest, IgnoredSignalRestarts) {
  ScopedSignalMask block(SIG_BLOCK, SignalSet({SIGURG}));
  // SIGURG's default action ignores it; being blocked, it stays pending.
  ASSERT_THAT(Tgkill(SIGURG), SyscallSucceeds());
  uint64_t mask = 0;
  struct timespec ts = {0, 20 * 1000 * 1000};
  const int64_t start = MonotonicNanos();
  EXPECT_THAT(Ppoll(nullptr, 0, &ts, &mask), SyscallSucceedsWithValue(0));
  EXPECT_GE(MonotonicNanos() - start, 20 * 1000 * 1000);
  sigset_t pending;
  ASSERT_THAT(sigpending(&pending), SyscallSucceeds());
  EXPECT_FALSE(sigismember(&pending, SIGURG));
}

// SIGKILL and SIGSTOP in the temporary mask are ignored, not an error.
TEST(PpollTest, UnblockableSignalsInMask) {
  uint64_t mask = Bit(SIGKILL) | Bit(SIGSTOP);
  struct timespec ts = {0, 0};
  EXPECT_THAT(Ppoll(nullptr, 0, &ts, &mask), SyscallSucceedsWithValue(0));
}

TEST(PollTest, WokenByEventfdWrite) {
  FileDescriptor efd = NewEventfd(0);
  std::thread writer([&] {
    usleep(10000);
    uint64_t one = 1;
    EXPECT_THAT(write(efd.get(), &one, sizeof(one)), SyscallSucceeds());
  });
  struct pollfd pfd = {efd.get(), POLLIN, 0};
  EXPECT_THAT(Poll(&pfd, 1, -1), SyscallSucceedsWithValue(1));
  EXPECT_EQ(pfd.revents, POLLIN);
  writer.join();
}

// poll is interrupted by a handled signal even with SA_RESTART: it returns
// -ERESTART_RESTARTBLOCK, which a handler turns into EINTR.
TEST(PollTest, InterruptedBySignal) {
  struct sigaction sa = {};
  sa.sa_handler = CountingHandler;
  sa.sa_flags = SA_RESTART;
  ScopedSigaction scoped(SIGALRM, sa);
  handled = 0;
  struct itimerval it = {{0, 0}, {0, 20000}};
  ASSERT_THAT(setitimer(ITIMER_REAL, &it, nullptr), SyscallSucceeds());
  EXPECT_THAT(Poll(nullptr, 0, 5000), SyscallFailsWithErrno(EINTR));
  EXPECT_EQ(handled, 1);
}

TEST(PollPipeTest, HangupIsAlwaysReported) {
  int fds[2];
  ASSERT_THAT(pipe2(fds, O_CLOEXEC), SyscallSucceeds());
  FileDescriptor r(fds[0]), w(fds[1]);
  struct pollfd pfd = {r.get(), 0, 0};
  ASSERT_THAT(Poll(&pfd, 1, 0), SyscallSucceedsWithValue(0));
  w.reset();
  ASSERT_THAT(Poll(&pfd, 1, 0), SyscallSucceedsWithValue(1));
  EXPECT_EQ(pfd.revents, POLLHUP);
}

TEST(PollPipeTest, ErrorIsAlwaysReported) {
  int fds[2];
  ASSERT_THAT(pipe2(fds, O_CLOEXEC), SyscallSucceeds());
  FileDescriptor r(fds[0]), w(fds[1]);
  r.reset();
  struct pollfd pfd = {w.get(), POLLIN, 0};
  ASSERT_THAT(Poll(&pfd, 1, 0), SyscallSucceedsWithValue(1));
  EXPECT_EQ(pfd.revents, POLLERR);
}

TEST(PollPipeTest, DataIsReadable) {
  int fds[2];
  ASSERT_THAT(pipe2(fds, O_CLOEXEC), SyscallSucceeds());
  FileDescriptor r(fds[0]), w(fds[1]);
  struct pollfd pfds[] = {{r.get(), POLLIN, 0}, {w.get(), POLLOUT, 0}};
  ASSERT_THAT(Poll(pfds, 2, 0), SyscallSucceedsWithValue(1));
  EXPECT_EQ(pfds[1].revents, POLLOUT);
  ASSERT_THAT(write(w.get(), "x", 1), SyscallSucceeds());
  ASSERT_THAT(Poll(pfds, 2, 0), SyscallSucceedsWithValue(2));
  EXPECT_EQ(pfds[0].revents, POLLIN);
  pfds[0].events = POLLIN | POLLRDNORM;
  ASSERT_THAT(Poll(pfds, 1, 0), SyscallSucceedsWithValue(1));
  EXPECT_EQ(pfds[0].revents, POLLIN | POLLRDNORM);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
