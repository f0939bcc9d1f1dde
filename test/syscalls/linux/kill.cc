// kill(2), tkill(2) and tgkill(2): targets by pid, process group and
// thread, and the order in which errors are found. Signal 0 is used
// wherever the target could be another process of the machine.

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/signal_util.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

constexpr pid_t kNoSuchPid = 4194303;

pid_t Tid() { return syscall(SYS_gettid); }

TEST(KillTest, SignalZeroChecksExistence) {
  EXPECT_THAT(kill(getpid(), 0), SyscallSucceeds());
  EXPECT_THAT(kill(kNoSuchPid, 0), SyscallFailsWithErrno(ESRCH));
}

TEST(KillTest, OwnProcessGroup) {
  EXPECT_THAT(kill(0, 0), SyscallSucceeds());
  // getpgrp(2) comes with the process work of #4; until then the sandbox
  // has no way to name the group.
  SKIP_IF(IsRunningOnSandbox() && syscall(SYS_getpgrp) < 0);
  // The container's init leads process group 1, which kill(2) cannot name:
  // -1 means every process.
  if (getpgrp() != 1) {
    EXPECT_THAT(kill(-getpgrp(), 0), SyscallSucceeds());
  }
  EXPECT_THAT(kill(-kNoSuchPid, 0), SyscallFailsWithErrno(ESRCH));
}

TEST(KillTest, IntMinIsEsrch) {
  EXPECT_THAT(kill(INT_MIN, 0), SyscallFailsWithErrno(ESRCH));
}

TEST(KillTest, MissingProcessBeforeBadSignal) {
  // The target is looked up before the signal number is checked.
  EXPECT_THAT(kill(kNoSuchPid, 65), SyscallFailsWithErrno(ESRCH));
  EXPECT_THAT(kill(getpid(), 65), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(kill(getpid(), -1), SyscallFailsWithErrno(EINVAL));
}

TEST(KillTest, SignalToOwnGroupArrives) {
  sigset_t usr1 = SignalSet({SIGUSR1});
  ScopedSignalMask block(SIG_BLOCK, usr1);
  // Only this process is sure to be in its group under runsc; natively
  // the group may hold others, so the signal goes by pid here and by group
  // with signal 0 above.
  ASSERT_THAT(kill(getpid(), SIGUSR1), SyscallSucceeds());
  siginfo_t info = {};
  struct timespec zero = {};
  ASSERT_THAT(sigtimedwait(&usr1, &info, &zero), SyscallSucceedsWithValue(SIGUSR1));
  EXPECT_EQ(info.si_code, SI_USER);
  EXPECT_EQ(info.si_pid, getpid());
}

TEST(KillTest, TkillAndTgkillErrors) {
  EXPECT_THAT(syscall(SYS_tkill, 0, 0), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_tkill, -1, 0), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_tkill, kNoSuchPid, 0), SyscallFailsWithErrno(ESRCH));
  EXPECT_THAT(syscall(SYS_tkill, Tid(), 65), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_tkill, Tid(), 0), SyscallSucceeds());
  EXPECT_THAT(syscall(SYS_tgkill, 0, Tid(), 0), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_tgkill, getpid(), 0, 0), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_tgkill, kNoSuchPid, Tid(), 0),
              SyscallFailsWithErrno(ESRCH));
  EXPECT_THAT(syscall(SYS_tgkill, getpid(), Tid(), 0), SyscallSucceeds());
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
