// pidfd_open(2), pidfd_send_signal(2), pidfd_getfd(2) and waitid(P_PIDFD).

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/multiprocess_util.h"
#include "test/util/test_util.h"

#ifndef PIDFD_NONBLOCK
#define PIDFD_NONBLOCK O_NONBLOCK
#endif

namespace pyvisor {
namespace testing {
namespace {

int PidfdOpen(pid_t pid, unsigned flags = 0) {
  return syscall(SYS_pidfd_open, pid, flags);
}

pid_t SpawnPaused() {
  HelperSpec spec;
  spec.action = "pause";
  const pid_t pid = SpawnHelper(spec);
  EXPECT_THAT(pid, SyscallSucceeds());
  return pid;
}

TEST(PidfdTest, OpenChecks) {
  EXPECT_THAT(PidfdOpen(0), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(PidfdOpen(-1), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(PidfdOpen(getpid(), 1), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(PidfdOpen(0x3fffff0), SyscallFailsWithErrno(ESRCH));
  const int fd = PidfdOpen(getpid());
  ASSERT_THAT(fd, SyscallSucceeds());
  EXPECT_THAT(fcntl(fd, F_GETFD), SyscallSucceedsWithValue(FD_CLOEXEC));
  EXPECT_EQ(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
  close(fd);
  const int nb = PidfdOpen(getpid(), PIDFD_NONBLOCK);
  ASSERT_THAT(nb, SyscallSucceeds());
  EXPECT_NE(fcntl(nb, F_GETFL) & O_NONBLOCK, 0);
  close(nb);
}

TEST(PidfdTest, ThreadIdNeedsPidfdThread) {
  pid_t tid = 0;
  int err = 0;
  std::thread t([&] {
    tid = syscall(SYS_gettid);
    if (PidfdOpen(tid) < 0) err = errno;
  });
  t.join();
  EXPECT_EQ(err, ENOENT);
}

TEST(PidfdTest, SendSignalKillsTheProcess) {
  const pid_t pid = SpawnPaused();
  const int fd = PidfdOpen(pid);
  ASSERT_THAT(fd, SyscallSucceeds());
  EXPECT_THAT(syscall(SYS_pidfd_send_signal, fd, 0, nullptr, 0),
              SyscallSucceeds());
  EXPECT_THAT(syscall(SYS_pidfd_send_signal, fd, SIGKILL, nullptr, 1 << 5),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_pidfd_send_signal, fd, 65, nullptr, 0),
              SyscallFailsWithErrno(EINVAL));
  ASSERT_THAT(syscall(SYS_pidfd_send_signal, fd, SIGKILL, nullptr, 0),
              SyscallSucceeds());
  siginfo_t info = {};
  ASSERT_THAT(waitid(static_cast<idtype_t>(P_PIDFD), fd, &info, WEXITED),
              SyscallSucceeds());
  EXPECT_EQ(info.si_pid, pid);
  EXPECT_EQ(info.si_code, CLD_KILLED);
  EXPECT_EQ(info.si_status, SIGKILL);
  // The process is gone.
  EXPECT_THAT(syscall(SYS_pidfd_send_signal, fd, 0, nullptr, 0),
              SyscallFailsWithErrno(ESRCH));
  close(fd);
}

TEST(PidfdTest, SendSignalNeedsAPidfd) {
  EXPECT_THAT(syscall(SYS_pidfd_send_signal, 1, 0, nullptr, 0),
              SyscallFailsWithErrno(EBADF));
  EXPECT_THAT(syscall(SYS_pidfd_send_signal, -1, 0, nullptr, 0),
              SyscallFailsWithErrno(EBADF));
}

TEST(PidfdTest, SiginfoMustMatchAndBeHonestForOthers) {
  const pid_t pid = SpawnPaused();
  const int fd = PidfdOpen(pid);
  ASSERT_THAT(fd, SyscallSucceeds());
  siginfo_t info = {};
  info.si_signo = SIGUSR1;
  info.si_code = SI_QUEUE;
  EXPECT_THAT(syscall(SYS_pidfd_send_signal, fd, SIGUSR2, &info, 0),
              SyscallFailsWithErrno(EINVAL));
  // A non-negative si_code pretends to be the kernel: not to others.
  info.si_code = SI_USER;
  EXPECT_THAT(syscall(SYS_pidfd_send_signal, fd, SIGUSR1, &info, 0),
              SyscallFailsWithErrno(EPERM));
  kill(pid, SIGKILL);
  WaitForStatus(pid);
  close(fd);
}

TEST(PidfdTest, WaitidNonblockingPidfd) {
  const pid_t pid = SpawnPaused();
  const int fd = PidfdOpen(pid, PIDFD_NONBLOCK);
  ASSERT_THAT(fd, SyscallSucceeds());
  siginfo_t info = {};
  // A nonblocking pidfd makes the wait WNOHANG; Linux then fails with
  // EAGAIN rather than returning 0.
  const long r = syscall(SYS_waitid, P_PIDFD, fd, &info, WEXITED, nullptr);
  if (r == 0) {
    EXPECT_EQ(info.si_pid, 0);
  } else {
    EXPECT_EQ(errno, EAGAIN);
  }
  kill(pid, SIGKILL);
  WaitForStatus(pid);
  close(fd);
}

TEST(PidfdTest, WaitidOnSomeoneElsesPidfdIsEchild) {
  const int fd = PidfdOpen(getpid());
  ASSERT_THAT(fd, SyscallSucceeds());
  siginfo_t info;
  EXPECT_THAT(syscall(SYS_waitid, P_PIDFD, fd, &info, WEXITED, nullptr),
              SyscallFailsWithErrno(ECHILD));
  close(fd);
}

TEST(PidfdTest, PollReportsExit) {
  const pid_t pid = SpawnPaused();
  const int fd = PidfdOpen(pid);
  ASSERT_THAT(fd, SyscallSucceeds());
  struct pollfd pfd = {fd, POLLIN, 0};
  EXPECT_THAT(poll(&pfd, 1, 0), SyscallSucceedsWithValue(0));
  kill(pid, SIGKILL);
  EXPECT_THAT(poll(&pfd, 1, 10000), SyscallSucceedsWithValue(1));
  EXPECT_TRUE(pfd.revents & POLLIN);
  WaitForStatus(pid);
  close(fd);
}

TEST(PidfdTest, GetfdDuplicatesADescriptorOfTheTarget) {
  const int pidfd = PidfdOpen(getpid());
  ASSERT_THAT(pidfd, SyscallSucceeds());
  EXPECT_THAT(syscall(SYS_pidfd_getfd, pidfd, 1, 1),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_pidfd_getfd, pidfd, 12345, 0),
              SyscallFailsWithErrno(EBADF));
  EXPECT_THAT(syscall(SYS_pidfd_getfd, 1, 1, 0), SyscallFailsWithErrno(EBADF));
  const int fd = syscall(SYS_pidfd_getfd, pidfd, 1, 0);
  ASSERT_THAT(fd, SyscallSucceeds());
  EXPECT_THAT(fcntl(fd, F_GETFD), SyscallSucceedsWithValue(FD_CLOEXEC));
  // The same open file: its status flags are shared.
  EXPECT_EQ(fcntl(fd, F_GETFL), fcntl(1, F_GETFL));
  close(fd);
  close(pidfd);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
