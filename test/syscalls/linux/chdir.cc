// chdir(2), fchdir(2), getcwd(2), chroot(2).

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/fs_util.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

std::string Cwd() {
  char buf[PATH_MAX];
  if (getcwd(buf, sizeof(buf)) == nullptr) return "";
  return buf;
}

class ChdirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    old_ = Cwd();
    ASSERT_FALSE(old_.empty());
  }
  void TearDown() override { EXPECT_THAT(chdir(old_.c_str()), SyscallSucceeds()); }
  TempDir dir_;
  std::string old_;
};

TEST_F(ChdirTest, ChdirAndGetcwd) {
  ASSERT_THAT(chdir(dir_.path().c_str()), SyscallSucceeds());
  EXPECT_EQ(Cwd(), dir_.path());
  ASSERT_THAT(mkdir("sub", 0755), SyscallSucceeds());
  ASSERT_THAT(chdir("sub"), SyscallSucceeds());
  EXPECT_EQ(Cwd(), dir_.Join("sub"));
  ASSERT_THAT(chdir(".."), SyscallSucceeds());
  EXPECT_EQ(Cwd(), dir_.path());
  // Relative paths resolve from the working directory.
  ASSERT_TRUE(WriteFile("rel", "r"));
  EXPECT_EQ(ReadFile(dir_.Join("rel")), "r");
}

TEST_F(ChdirTest, ChdirThroughSymlink) {
  ASSERT_THAT(symlink(dir_.path().c_str(), dir_.Join("l").c_str()),
              SyscallSucceeds());
  ASSERT_THAT(chdir(dir_.Join("l").c_str()), SyscallSucceeds());
  EXPECT_EQ(Cwd(), dir_.path());
}

TEST_F(ChdirTest, Errors) {
  ASSERT_TRUE(WriteFile(dir_.Join("f"), ""));
  EXPECT_THAT(chdir(dir_.Join("f").c_str()), SyscallFailsWithErrno(ENOTDIR));
  EXPECT_THAT(chdir(dir_.Join("nope").c_str()), SyscallFailsWithErrno(ENOENT));
  EXPECT_THAT(chdir(""), SyscallFailsWithErrno(ENOENT));
  FileDescriptor f(open(dir_.Join("f").c_str(), O_RDONLY));
  EXPECT_THAT(fchdir(f.get()), SyscallFailsWithErrno(ENOTDIR));
  EXPECT_THAT(fchdir(-1), SyscallFailsWithErrno(EBADF));
}

TEST_F(ChdirTest, Fchdir) {
  FileDescriptor d(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_THAT(fchdir(d.get()), SyscallSucceeds());
  EXPECT_EQ(Cwd(), dir_.path());
  ASSERT_THAT(chdir("/"), SyscallSucceeds());
  FileDescriptor p(open(dir_.path().c_str(), O_PATH));
  ASSERT_THAT(fchdir(p.get()), SyscallSucceeds());
  EXPECT_EQ(Cwd(), dir_.path());
}

TEST_F(ChdirTest, GetcwdErrors) {
  ASSERT_THAT(chdir(dir_.path().c_str()), SyscallSucceeds());
  char small[2];
  EXPECT_THAT(syscall(SYS_getcwd, small, sizeof(small)),
              SyscallFailsWithErrno(ERANGE));
  EXPECT_THAT(syscall(SYS_getcwd, nullptr, PATH_MAX),
              SyscallFailsWithErrno(EFAULT));
  char buf[PATH_MAX];
  EXPECT_THAT(syscall(SYS_getcwd, buf, sizeof(buf)),
              SyscallSucceedsWithValue(dir_.path().size() + 1));
}

TEST_F(ChdirTest, ChrootAndEscapeWithSavedDirectory) {
  ASSERT_THAT(mkdir(dir_.Join("jail").c_str(), 0755), SyscallSucceeds());
  ASSERT_TRUE(WriteFile(dir_.Join("jail/inside"), "in"));
  FileDescriptor oldroot(open("/", O_RDONLY | O_DIRECTORY));
  ASSERT_THAT(chroot(dir_.Join("jail").c_str()), SyscallSucceeds());
  ASSERT_THAT(chdir("/"), SyscallSucceeds());
  EXPECT_EQ(Cwd(), "/");
  EXPECT_EQ(ReadFile("/inside"), "in");
  // ".." at the new root stays there.
  EXPECT_EQ(ReadFile("/../../inside"), "in");
  // An absolute symlink resolves inside the new root.
  ASSERT_THAT(symlink("/inside", "/abs"), SyscallSucceeds());
  EXPECT_EQ(ReadFile("/abs"), "in");
  // A working directory outside the root shows as unreachable (glibc's
  // getcwd refuses such a path, so ask the kernel directly).
  ASSERT_THAT(fchdir(oldroot.get()), SyscallSucceeds());
  char raw[PATH_MAX] = {};
  ASSERT_THAT(syscall(SYS_getcwd, raw, sizeof(raw)), SyscallSucceeds());
  EXPECT_EQ(std::string(raw).rfind("(unreachable)", 0), 0u) << raw;
  // Back to the real root.
  ASSERT_THAT(chroot("."), SyscallSucceeds());
  EXPECT_EQ(Cwd(), "/");
}

TEST_F(ChdirTest, ChrootErrors) {
  ASSERT_TRUE(WriteFile(dir_.Join("f"), ""));
  EXPECT_THAT(chroot(dir_.Join("f").c_str()), SyscallFailsWithErrno(ENOTDIR));
  EXPECT_THAT(chroot(dir_.Join("nope").c_str()), SyscallFailsWithErrno(ENOENT));
}

TEST_F(ChdirTest, NonRootCannotChroot) {
  EXPECT_EQ(RunAsNobody([] { return chroot("/") ? errno : 0; }), EPERM);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
