// setsid(2), getsid(2), setpgid(2), getpgid(2), getpgrp(2).

#include <errno.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/multiprocess_util.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

int ExitCode(pid_t pid) {
  const int status = WaitForStatus(pid);
  EXPECT_TRUE(WIFEXITED(status)) << std::hex << status;
  return WEXITSTATUS(status);
}

pid_t SpawnPaused(std::function<void()> pre_exec = nullptr) {
  HelperSpec spec;
  spec.action = "pause";
  spec.pre_exec = std::move(pre_exec);
  const pid_t pid = SpawnHelper(spec);
  EXPECT_THAT(pid, SyscallSucceeds());
  return pid;
}

void KillAndReap(pid_t pid) {
  kill(pid, SIGKILL);
  WaitForStatus(pid);
}

TEST(SessionTest, QueriesAgree) {
  EXPECT_EQ(syscall(SYS_getpgid, 0), syscall(SYS_getpgrp));
  EXPECT_EQ(syscall(SYS_getpgid, getpid()), syscall(SYS_getpgrp));
  EXPECT_EQ(syscall(SYS_getsid, 0), syscall(SYS_getsid, getpid()));
  EXPECT_THAT(syscall(SYS_getsid, 0), SyscallSucceedsWithValue(::testing::Gt(0)));
}

TEST(SessionTest, UnknownPidIsEsrch) {
  EXPECT_THAT(syscall(SYS_getpgid, 0x3fffff0), SyscallFailsWithErrno(ESRCH));
  EXPECT_THAT(syscall(SYS_getsid, 0x3fffff0), SyscallFailsWithErrno(ESRCH));
  EXPECT_THAT(syscall(SYS_setpgid, 0x3fffff0, 0), SyscallFailsWithErrno(ESRCH));
}

TEST(SessionTest, SetsidMakesANewSessionAndGroup) {
  pid_t sid = 0, pgid = 0, self = 0, getsid_result = 0;
  const pid_t pid = VforkRun([&]() -> int {
    self = syscall(SYS_getpid);
    sid = syscall(SYS_setsid);
    pgid = syscall(SYS_getpgrp);
    getsid_result = syscall(SYS_getsid, 0);
    return 0;
  });
  ASSERT_THAT(pid, SyscallSucceeds());
  EXPECT_EQ(ExitCode(pid), 0);
  EXPECT_EQ(sid, pid);
  EXPECT_EQ(self, pid);
  EXPECT_EQ(pgid, pid);
  EXPECT_EQ(getsid_result, pid);
  // We are unchanged.
  EXPECT_NE(syscall(SYS_getsid, 0), pid);
}

TEST(SessionTest, SetsidAsGroupLeaderIsEperm) {
  long first = 0, second = 0;
  int err = 0;
  const pid_t pid = VforkRun([&]() -> int {
    first = syscall(SYS_setpgid, 0, 0);
    second = syscall(SYS_setsid);
    err = errno;
    return 0;
  });
  ASSERT_THAT(pid, SyscallSucceeds());
  EXPECT_EQ(ExitCode(pid), 0);
  EXPECT_EQ(first, 0);
  EXPECT_EQ(second, -1);
  EXPECT_EQ(err, EPERM);
}

TEST(SessionTest, SetpgidOfAChildBeforeAndAfterExec) {
  // Before exec (from the child itself) it may move; after exec the parent
  // may not move it.
  const pid_t pid = SpawnPaused([] { syscall(SYS_setpgid, 0, 0); });
  EXPECT_EQ(syscall(SYS_getpgid, pid), pid);
  EXPECT_THAT(syscall(SYS_setpgid, pid, getpgrp()),
              SyscallFailsWithErrno(EACCES));
  KillAndReap(pid);
}

TEST(SessionTest, SetpgidChecks) {
  EXPECT_THAT(syscall(SYS_setpgid, 0, -1), SyscallFailsWithErrno(EINVAL));
  // A child in another session may not be moved, nor joined.
  const pid_t other = SpawnPaused([] { syscall(SYS_setsid); });
  EXPECT_EQ(syscall(SYS_getsid, other), other);
  EXPECT_THAT(syscall(SYS_setpgid, other, other), SyscallFailsWithErrno(EPERM));
  long joined = 0;
  int err = 0;
  const pid_t pid = VforkRun([&]() -> int {
    joined = syscall(SYS_setpgid, 0, other);
    err = errno;
    return 0;
  });
  ASSERT_THAT(pid, SyscallSucceeds());
  EXPECT_EQ(ExitCode(pid), 0);
  EXPECT_EQ(joined, -1);
  EXPECT_EQ(err, EPERM);
  KillAndReap(other);
}

TEST(SessionTest, SessionLeaderCannotChangeGroup) {
  long r = 0;
  int err = 0;
  const pid_t pid = VforkRun([&]() -> int {
    syscall(SYS_setsid);
    r = syscall(SYS_setpgid, 0, 0);
    err = errno;
    return 0;
  });
  ASSERT_THAT(pid, SyscallSucceeds());
  EXPECT_EQ(ExitCode(pid), 0);
  EXPECT_EQ(r, -1);
  EXPECT_EQ(err, EPERM);
}

TEST(SessionTest, JoinAnExistingGroupAndSignalIt) {
  const pid_t leader = SpawnPaused([] { syscall(SYS_setpgid, 0, 0); });
  const pid_t member = SpawnPaused([leader] { syscall(SYS_setpgid, 0, leader); });
  EXPECT_EQ(syscall(SYS_getpgid, member), leader);
  ASSERT_THAT(kill(-leader, SIGKILL), SyscallSucceeds());
  int status = WaitForStatus(leader);
  EXPECT_TRUE(WIFSIGNALED(status));
  status = WaitForStatus(member);
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_THAT(kill(-leader, 0), SyscallFailsWithErrno(ESRCH));
}

TEST(SessionTest, GroupOutlivesItsCreator) {
  // A process group keeps its id while members remain, even after the
  // process it was named after is gone.
  const pid_t leader = SpawnPaused([] { syscall(SYS_setpgid, 0, 0); });
  const pid_t member = SpawnPaused([leader] { syscall(SYS_setpgid, 0, leader); });
  KillAndReap(leader);
  EXPECT_EQ(syscall(SYS_getpgid, member), leader);
  // Another child can still join it.
  long joined = -2;
  const pid_t pid = VforkRun([&]() -> int {
    joined = syscall(SYS_setpgid, 0, leader);
    return 0;
  });
  ASSERT_THAT(pid, SyscallSucceeds());
  EXPECT_EQ(ExitCode(pid), 0);
  EXPECT_EQ(joined, 0);
  KillAndReap(member);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
