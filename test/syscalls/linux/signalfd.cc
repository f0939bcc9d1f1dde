// signalfd(2) and signalfd4(2): reading queued signals as struct
// signalfd_siginfo, readiness, SFD_NONBLOCK, changing the mask of an
// existing signalfd (fs/signalfd.c).
//
// Signals are sent to this thread with tgkill and to the process with
// kill. Cases woken by a second thread need clone(2) and are skipped in the
// sandbox for now.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/signal_util.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

constexpr size_t kSigsetSize = sizeof(uint64_t);

uint64_t Bit(int sig) { return uint64_t{1} << (sig - 1); }

long Signalfd4(int fd, const uint64_t* mask, int flags,
               size_t size = kSigsetSize) {
  return syscall(SYS_signalfd4, fd, mask, size, flags);
}

FileDescriptor NewSignalfd(uint64_t mask, int flags) {
  int fd = Signalfd4(-1, &mask, flags);
  EXPECT_THAT(fd, SyscallSucceeds());
  return FileDescriptor(fd);
}

long Tgkill(int sig) {
  return syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), sig);
}

bool Pending(int sig) {
  sigset_t pending;
  EXPECT_THAT(sigpending(&pending), SyscallSucceeds());
  return sigismember(&pending, sig);
}

// Each test blocks the signals it uses, and discards whatever it leaves
// pending before unblocking them.
class SignalfdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sigset_t set = SignalSet({SIGUSR1, SIGUSR2, SIGRTMIN});
    ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &set, &old_), 0);
  }
  void TearDown() override {
    for (int sig : {SIGUSR1, SIGUSR2, SIGRTMIN}) {
      struct sigaction ign = {}, old;
      ign.sa_handler = SIG_IGN;
      EXPECT_THAT(sigaction(sig, &ign, &old), SyscallSucceeds());
      EXPECT_THAT(sigaction(sig, &old, nullptr), SyscallSucceeds());
    }
    EXPECT_EQ(pthread_sigmask(SIG_SETMASK, &old_, nullptr), 0);
  }

 private:
  sigset_t old_;
};

TEST_F(SignalfdTest, ArgumentErrors) {
  uint64_t mask = Bit(SIGUSR1);
  EXPECT_THAT(Signalfd4(-1, &mask, 0, 4), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(Signalfd4(-1, &mask, 0, 16), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(Signalfd4(-1, &mask, O_APPEND), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(Signalfd4(-1, nullptr, 0), SyscallFailsWithErrno(EFAULT));
  EXPECT_THAT(Signalfd4(-2, &mask, 0), SyscallFailsWithErrno(EBADF));
  EXPECT_THAT(Signalfd4(1000, &mask, 0), SyscallFailsWithErrno(EBADF));
  // An existing descriptor must be a signalfd.
  int efd = syscall(SYS_eventfd2, 0, 0);
  ASSERT_THAT(efd, SyscallSucceeds());
  FileDescriptor owned(efd);
  EXPECT_THAT(Signalfd4(efd, &mask, 0), SyscallFailsWithErrno(EINVAL));
}

TEST_F(SignalfdTest, Flags) {
  FileDescriptor fd = NewSignalfd(Bit(SIGUSR1), SFD_NONBLOCK | SFD_CLOEXEC);
  EXPECT_THAT(fcntl(fd.get(), F_GETFL),
              SyscallSucceedsWithValue(O_RDWR | O_NONBLOCK));
  EXPECT_THAT(fcntl(fd.get(), F_GETFD), SyscallSucceedsWithValue(FD_CLOEXEC));
  FileDescriptor fd2 = NewSignalfd(Bit(SIGUSR1), 0);
  EXPECT_THAT(fcntl(fd2.get(), F_GETFL), SyscallSucceedsWithValue(O_RDWR));
  EXPECT_THAT(fcntl(fd2.get(), F_GETFD), SyscallSucceedsWithValue(0));
}

TEST_F(SignalfdTest, NothingPendingIsEagain) {
  FileDescriptor fd = NewSignalfd(Bit(SIGUSR1), SFD_NONBLOCK);
  struct signalfd_siginfo info;
  EXPECT_THAT(read(fd.get(), &info, sizeof(info)),
              SyscallFailsWithErrno(EAGAIN));
}

TEST_F(SignalfdTest, ReadsThreadSignal) {
  FileDescriptor fd = NewSignalfd(Bit(SIGUSR1), SFD_NONBLOCK);
  ASSERT_THAT(Tgkill(SIGUSR1), SyscallSucceeds());
  struct signalfd_siginfo info = {};
  ASSERT_THAT(read(fd.get(), &info, sizeof(info)),
              SyscallSucceedsWithValue(sizeof(info)));
  EXPECT_EQ(info.ssi_signo, static_cast<uint32_t>(SIGUSR1));
  EXPECT_EQ(info.ssi_code, SI_TKILL);
  EXPECT_EQ(info.ssi_pid, static_cast<uint32_t>(getpid()));
  EXPECT_EQ(info.ssi_uid, getuid());
  EXPECT_EQ(info.ssi_errno, 0);
  // Consumed.
  EXPECT_FALSE(Pending(SIGUSR1));
  EXPECT_THAT(read(fd.get(), &info, sizeof(info)),
              SyscallFailsWithErrno(EAGAIN));
}

TEST_F(SignalfdTest, ReadsProcessSignal) {
  FileDescriptor fd = NewSignalfd(Bit(SIGUSR2), SFD_NONBLOCK);
  ASSERT_THAT(kill(getpid(), SIGUSR2), SyscallSucceeds());
  struct signalfd_siginfo info = {};
  ASSERT_THAT(read(fd.get(), &info, sizeof(info)),
              SyscallSucceedsWithValue(sizeof(info)));
  EXPECT_EQ(info.ssi_signo, static_cast<uint32_t>(SIGUSR2));
  EXPECT_EQ(info.ssi_code, SI_USER);
  EXPECT_EQ(info.ssi_pid, static_cast<uint32_t>(getpid()));
  EXPECT_FALSE(Pending(SIGUSR2));
}

TEST_F(SignalfdTest, SmallBufferIsEinval) {
  FileDescriptor fd = NewSignalfd(Bit(SIGUSR1), SFD_NONBLOCK);
  ASSERT_THAT(Tgkill(SIGUSR1), SyscallSucceeds());
  char buf[sizeof(struct signalfd_siginfo) - 1];
  EXPECT_THAT(read(fd.get(), buf, sizeof(buf)), SyscallFailsWithErrno(EINVAL));
  // Nothing was consumed.
  EXPECT_TRUE(Pending(SIGUSR1));
}

// A read takes as many signals as fit, lowest number first.
TEST_F(SignalfdTest, ReadsSeveral) {
  FileDescriptor fd = NewSignalfd(Bit(SIGUSR1) | Bit(SIGUSR2), SFD_NONBLOCK);
  ASSERT_THAT(Tgkill(SIGUSR2), SyscallSucceeds());
  ASSERT_THAT(Tgkill(SIGUSR1), SyscallSucceeds());
  struct signalfd_siginfo infos[3] = {};
  // Room for one and a half: one is read.
  ASSERT_THAT(read(fd.get(), infos, sizeof(infos[0]) * 3 / 2),
              SyscallSucceedsWithValue(sizeof(infos[0])));
  EXPECT_EQ(infos[0].ssi_signo, static_cast<uint32_t>(SIGUSR1));
  ASSERT_THAT(Tgkill(SIGUSR1), SyscallSucceeds());
  ASSERT_THAT(read(fd.get(), infos, sizeof(infos)),
              SyscallSucceedsWithValue(2 * sizeof(infos[0])));
  EXPECT_EQ(infos[0].ssi_signo, static_cast<uint32_t>(SIGUSR1));
  EXPECT_EQ(infos[1].ssi_signo, static_cast<uint32_t>(SIGUSR2));
}

// Real-time signals queue: each instance is read.
TEST_F(SignalfdTest, RealtimeSignalsQueue) {
  FileDescriptor fd = NewSignalfd(Bit(SIGRTMIN), SFD_NONBLOCK);
  ASSERT_THAT(Tgkill(SIGRTMIN), SyscallSucceeds());
  ASSERT_THAT(Tgkill(SIGRTMIN), SyscallSucceeds());
  struct signalfd_siginfo infos[3];
  ASSERT_THAT(read(fd.get(), infos, sizeof(infos)),
              SyscallSucceedsWithValue(2 * sizeof(infos[0])));
  EXPECT_EQ(infos[1].ssi_signo, static_cast<uint32_t>(SIGRTMIN));
}

TEST_F(SignalfdTest, OtherSignalsAreLeft) {
  FileDescriptor fd = NewSignalfd(Bit(SIGUSR1), SFD_NONBLOCK);
  ASSERT_THAT(Tgkill(SIGUSR2), SyscallSucceeds());
  struct signalfd_siginfo info;
  EXPECT_THAT(read(fd.get(), &info, sizeof(info)),
              SyscallFailsWithErrno(EAGAIN));
  EXPECT_TRUE(Pending(SIGUSR2));
}

// signalfd4 on an existing signalfd replaces its mask and returns the same
// descriptor.
TEST_F(SignalfdTest, UpdateMask) {
  FileDescriptor fd = NewSignalfd(Bit(SIGUSR1), SFD_NONBLOCK);
  ASSERT_THAT(Tgkill(SIGUSR2), SyscallSucceeds());
  struct signalfd_siginfo info;
  EXPECT_THAT(read(fd.get(), &info, sizeof(info)),
              SyscallFailsWithErrno(EAGAIN));
  uint64_t mask = Bit(SIGUSR2);
  ASSERT_THAT(Signalfd4(fd.get(), &mask, 0), SyscallSucceedsWithValue(fd.get()));
  // The flags of an existing descriptor are not changed.
  EXPECT_THAT(fcntl(fd.get(), F_GETFL),
              SyscallSucceedsWithValue(O_RDWR | O_NONBLOCK));
  ASSERT_THAT(read(fd.get(), &info, sizeof(info)),
              SyscallSucceedsWithValue(sizeof(info)));
  EXPECT_EQ(info.ssi_signo, static_cast<uint32_t>(SIGUSR2));
}

TEST_F(SignalfdTest, PollReadiness) {
  FileDescriptor fd = NewSignalfd(Bit(SIGUSR1), SFD_NONBLOCK);
  struct pollfd pfd = {fd.get(), POLLIN | POLLOUT, 0};
  ASSERT_THAT(poll(&pfd, 1, 0), SyscallSucceedsWithValue(0));
  ASSERT_THAT(Tgkill(SIGUSR2), SyscallSucceeds());
  ASSERT_THAT(poll(&pfd, 1, 0), SyscallSucceedsWithValue(0));
  ASSERT_THAT(Tgkill(SIGUSR1), SyscallSucceeds());
  ASSERT_THAT(poll(&pfd, 1, 0), SyscallSucceedsWithValue(1));
  EXPECT_EQ(pfd.revents, POLLIN);
}

TEST_F(SignalfdTest, EpollReadiness) {
  FileDescriptor fd = NewSignalfd(Bit(SIGUSR1), SFD_NONBLOCK);
  int ep = syscall(SYS_epoll_create1, EPOLL_CLOEXEC);
  ASSERT_THAT(ep, SyscallSucceeds());
  FileDescriptor owned(ep);
  struct epoll_event ev = {};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.u64 = 77;
  ASSERT_THAT(epoll_ctl(ep, EPOLL_CTL_ADD, fd.get(), &ev), SyscallSucceeds());
  EXPECT_THAT(epoll_wait(ep, &ev, 1, 0), SyscallSucceedsWithValue(0));
  ASSERT_THAT(kill(getpid(), SIGUSR1), SyscallSucceeds());
  ASSERT_THAT(epoll_wait(ep, &ev, 1, 0), SyscallSucceedsWithValue(1));
  EXPECT_EQ(ev.events, EPOLLIN);
  EXPECT_EQ(ev.data.u64, 77u);
  EXPECT_THAT(epoll_wait(ep, &ev, 1, 0), SyscallSucceedsWithValue(0));
}

// Widening the mask of a signalfd makes an already pending signal ready.
TEST_F(SignalfdTest, UpdateMaskChangesReadiness) {
  FileDescriptor fd = NewSignalfd(Bit(SIGUSR1), SFD_NONBLOCK);
  ASSERT_THAT(Tgkill(SIGUSR2), SyscallSucceeds());
  struct pollfd pfd = {fd.get(), POLLIN, 0};
  ASSERT_THAT(poll(&pfd, 1, 0), SyscallSucceedsWithValue(0));
  uint64_t mask = Bit(SIGUSR1) | Bit(SIGUSR2);
  ASSERT_THAT(Signalfd4(fd.get(), &mask, 0), SyscallSucceeds());
  ASSERT_THAT(poll(&pfd, 1, 0), SyscallSucceedsWithValue(1));
}

TEST_F(SignalfdTest, ProcFdName) {
  FileDescriptor fd = NewSignalfd(Bit(SIGUSR1), 0);
  char path[64], target[64] = {};
  snprintf(path, sizeof(path), "/proc/self/fd/%d", fd.get());
  ASSERT_THAT(readlink(path, target, sizeof(target) - 1), SyscallSucceeds());
  EXPECT_STREQ(target, "anon_inode:[signalfd]");
}

TEST_F(SignalfdTest, BlockingReadWokenBySignal) {
  FileDescriptor fd = NewSignalfd(Bit(SIGUSR1), 0);
  std::thread sender([] {
    usleep(10000);
    EXPECT_THAT(kill(getpid(), SIGUSR1), SyscallSucceeds());
  });
  struct signalfd_siginfo info = {};
  ASSERT_THAT(read(fd.get(), &info, sizeof(info)),
              SyscallSucceedsWithValue(sizeof(info)));
  EXPECT_EQ(info.ssi_signo, static_cast<uint32_t>(SIGUSR1));
  sender.join();
}

void NoopHandler(int) {}

TEST_F(SignalfdTest, BlockingReadInterrupted) {
  struct sigaction sa = {};
  sa.sa_handler = NoopHandler;
  ScopedSigaction scoped(SIGALRM, sa);
  FileDescriptor fd = NewSignalfd(Bit(SIGUSR1), 0);
  struct itimerval it = {{0, 0}, {0, 20000}};
  ASSERT_THAT(setitimer(ITIMER_REAL, &it, nullptr), SyscallSucceeds());
  struct signalfd_siginfo info;
  EXPECT_THAT(read(fd.get(), &info, sizeof(info)),
              SyscallFailsWithErrno(EINTR));
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
