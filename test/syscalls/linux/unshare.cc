// unshare(2): private copies of the descriptor table and the filesystem
// context, and the refusals.

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/multiprocess_util.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

TEST(UnshareTest, UnknownFlagIsEinval) {
  EXPECT_THAT(syscall(SYS_unshare, 0x1), SyscallFailsWithErrno(EINVAL));
}

TEST(UnshareTest, NothingIsFine) {
  EXPECT_THAT(syscall(SYS_unshare, 0), SyscallSucceeds());
}

TEST(UnshareTest, FilesInAThread) {
  const int fd = dup(1);
  ASSERT_THAT(fd, SyscallSucceeds());
  std::thread t([fd] {
    ASSERT_THAT(syscall(SYS_unshare, CLONE_FILES), SyscallSucceeds());
    EXPECT_THAT(close(fd), SyscallSucceeds());
  });
  t.join();
  // Closed only in the thread's private copy.
  EXPECT_THAT(fcntl(fd, F_GETFD), SyscallSucceeds());
  close(fd);
}

TEST(UnshareTest, FsInAThread) {
  const mode_t old = umask(022);
  std::thread t([] {
    ASSERT_THAT(syscall(SYS_unshare, CLONE_FS), SyscallSucceeds());
    syscall(SYS_umask, 077);
  });
  t.join();
  EXPECT_EQ(umask(old), 022);
}

TEST(UnshareTest, ThreadsVmAndSighandNeedASingleThread) {
  std::thread t([] {
    EXPECT_THAT(syscall(SYS_unshare, CLONE_THREAD), SyscallFailsWithErrno(EINVAL));
    EXPECT_THAT(syscall(SYS_unshare, CLONE_SIGHAND),
                SyscallFailsWithErrno(EINVAL));
    EXPECT_THAT(syscall(SYS_unshare, CLONE_VM), SyscallFailsWithErrno(EINVAL));
  });
  t.join();
}

TEST(UnshareTest, SighandInASingleThreadedChild) {
  // A vfork child is one thread with its own signal actions, but shares
  // its memory with us.
  long sighand = -2, vm = -2;
  int vm_errno = 0;
  const pid_t pid = VforkRun([&]() -> int {
    sighand = syscall(SYS_unshare, CLONE_SIGHAND);
    vm = syscall(SYS_unshare, CLONE_VM);
    vm_errno = errno;
    return 0;
  });
  ASSERT_THAT(pid, SyscallSucceeds());
  WaitForStatus(pid);
  EXPECT_EQ(sighand, 0);
  EXPECT_EQ(vm, -1);
  EXPECT_EQ(vm_errno, EINVAL);
}

TEST(UnshareTest, NamespacesNeedCapSysAdmin) {
  std::thread t([] {
    ASSERT_THAT(syscall(SYS_setresuid, 65534, 65534, 65534), SyscallSucceeds());
    EXPECT_THAT(syscall(SYS_unshare, CLONE_NEWUTS), SyscallFailsWithErrno(EPERM));
    EXPECT_THAT(syscall(SYS_unshare, CLONE_NEWIPC), SyscallFailsWithErrno(EPERM));
  });
  t.join();
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
