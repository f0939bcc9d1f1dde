// pivot_root(2). The one test pivots for good, so this binary holds only
// it; natively it runs in a child process with its own mount namespace.

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/fs_util.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

int PivotRoot(const char* new_root, const char* put_old) {
  return syscall(SYS_pivot_root, new_root, put_old);
}

// Pivot does the checks and returns 0, or the number of the step that
// failed.
int Pivot(const std::string& base) {
  std::string root = base + "/root";
  if (mkdir(root.c_str(), 0755) != 0) return 1;
  if (mount("none", root.c_str(), "tmpfs", 0, nullptr) != 0) return 2;
  if (mkdir((root + "/old").c_str(), 0755) != 0) return 3;
  int fd = open((root + "/marker").c_str(), O_CREAT | O_WRONLY, 0644);
  if (fd < 0) return 4;
  close(fd);
  // put_old must be under new_root.
  if (PivotRoot(root.c_str(), base.c_str()) == 0 || errno != EINVAL) return 5;
  // new_root must be a mount point.
  if (PivotRoot((root + "/old").c_str(), (root + "/old").c_str()) == 0 ||
      errno != EINVAL) {
    return 6;
  }
  if (chdir(root.c_str()) != 0) return 7;
  if (PivotRoot(".", "old") != 0) return 8;
  char cwd[PATH_MAX];
  if (syscall(SYS_getcwd, cwd, sizeof(cwd)) < 0) return 9;
  if (std::string(cwd) != "/") return 10;
  if (access("/marker", F_OK) != 0) return 11;
  // The old root is at /old.
  if (access(("/old" + base + "/root").c_str(), F_OK) != 0) return 12;
  if (umount2("/old", MNT_DETACH) != 0) return 13;
  if (access(("/old" + base).c_str(), F_OK) == 0) return 14;
  return 0;
}

TEST(PivotRootTest, PivotsAndDetachesOldRoot) {
  TempDir dir("/tmp");
  ASSERT_FALSE(dir.path().empty());
  if (IsRunningOnSandbox()) {
    EXPECT_EQ(Pivot(dir.path()), 0);
    return;
  }
  std::string base = dir.path();
  pid_t pid = fork();
  if (pid == 0) {
    if (unshare(CLONE_NEWNS) != 0) _exit(100);
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      _exit(101);
    }
    // The root must itself be a mount point.
    if (mount(base.c_str(), base.c_str(), nullptr, MS_BIND, nullptr) != 0) {
      _exit(102);
    }
    _exit(Pivot(base));
  }
  int status;
  ASSERT_THAT(waitpid(pid, &status, 0), SyscallSucceedsWithValue(pid));
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
