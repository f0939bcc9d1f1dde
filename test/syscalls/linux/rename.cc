// rename(2), renameat(2), renameat2(2).

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/statfs.h>
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

// statfs f_type of overlayfs (OVERLAYFS_SUPER_MAGIC).
constexpr long kOverlayfsMagic = 0x794c7630;

int Renameat2(int olddir, const std::string& oldp, int newdir,
              const std::string& newp, unsigned flags) {
  return syscall(SYS_renameat2, olddir, oldp.c_str(), newdir, newp.c_str(),
                 flags);
}

class RenameTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    a_ = dir_.Join("a");
    b_ = dir_.Join("b");
    ASSERT_TRUE(WriteFile(a_, "A"));
  }
  TempDir dir_;
  std::string a_, b_;
};

TEST_F(RenameTest, MovesFile) {
  struct stat before, after;
  ASSERT_THAT(stat(a_.c_str(), &before), SyscallSucceeds());
  ASSERT_THAT(rename(a_.c_str(), b_.c_str()), SyscallSucceeds());
  EXPECT_FALSE(Exists(a_));
  ASSERT_THAT(stat(b_.c_str(), &after), SyscallSucceeds());
  EXPECT_EQ(before.st_ino, after.st_ino);
}

TEST_F(RenameTest, ReplacesFile) {
  ASSERT_TRUE(WriteFile(b_, "B"));
  FileDescriptor old(open(b_.c_str(), O_RDONLY));
  ASSERT_THAT(rename(a_.c_str(), b_.c_str()), SyscallSucceeds());
  EXPECT_EQ(ReadFile(b_), "A");
  // The replaced file lives on while open.
  struct stat st;
  ASSERT_THAT(fstat(old.get(), &st), SyscallSucceeds());
  EXPECT_EQ(st.st_nlink, 0u);
}

TEST_F(RenameTest, MovesDirectoryAcrossDirectories) {
  std::string d = dir_.Join("d"), e = dir_.Join("e");
  ASSERT_THAT(mkdir(d.c_str(), 0755), SyscallSucceeds());
  ASSERT_THAT(mkdir(e.c_str(), 0755), SyscallSucceeds());
  ASSERT_TRUE(WriteFile(d + "/f", "x"));
  ASSERT_THAT(rename(d.c_str(), (e + "/d2").c_str()), SyscallSucceeds());
  EXPECT_EQ(ReadFile(e + "/d2/f"), "x");
  struct stat st;
  ASSERT_THAT(stat(e.c_str(), &st), SyscallSucceeds());
  EXPECT_EQ(st.st_nlink, 3u);
  ASSERT_THAT(stat(dir_.path().c_str(), &st), SyscallSucceeds());
  EXPECT_EQ(st.st_nlink, 3u);  // ".", its entry, and e
}

TEST_F(RenameTest, DirectoryOntoEmptyDirectory) {
  std::string d = dir_.Join("d"), e = dir_.Join("e");
  ASSERT_THAT(mkdir(d.c_str(), 0755), SyscallSucceeds());
  ASSERT_THAT(mkdir(e.c_str(), 0755), SyscallSucceeds());
  ASSERT_THAT(rename(d.c_str(), e.c_str()), SyscallSucceeds());
  EXPECT_FALSE(Exists(d));
}

TEST_F(RenameTest, Errors) {
  std::string d = dir_.Join("d"), e = dir_.Join("e");
  ASSERT_THAT(mkdir(d.c_str(), 0755), SyscallSucceeds());
  ASSERT_THAT(mkdir(e.c_str(), 0755), SyscallSucceeds());
  ASSERT_TRUE(WriteFile(e + "/f", ""));
  EXPECT_THAT(rename(dir_.Join("nope").c_str(), b_.c_str()),
              SyscallFailsWithErrno(ENOENT));
  EXPECT_THAT(rename(d.c_str(), e.c_str()), SyscallFailsWithErrno(ENOTEMPTY));
  EXPECT_THAT(rename(d.c_str(), a_.c_str()), SyscallFailsWithErrno(ENOTDIR));
  EXPECT_THAT(rename(a_.c_str(), d.c_str()), SyscallFailsWithErrno(EISDIR));
  EXPECT_THAT(rename(d.c_str(), (d + "/sub").c_str()),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(rename((d + "/.").c_str(), b_.c_str()),
              SyscallFailsWithErrno(EBUSY));
  EXPECT_THAT(rename(a_.c_str(), (d + "/..").c_str()),
              SyscallFailsWithErrno(EBUSY));
  EXPECT_THAT(rename((a_ + "/").c_str(), b_.c_str()),
              SyscallFailsWithErrno(ENOTDIR));
  EXPECT_THAT(rename(a_.c_str(), (b_ + "/").c_str()),
              SyscallFailsWithErrno(ENOTDIR));
  EXPECT_THAT(rename(a_.c_str(), dir_.Join("nodir/x").c_str()),
              SyscallFailsWithErrno(ENOENT));
}

TEST_F(RenameTest, SameFileIsNoop) {
  ASSERT_THAT(rename(a_.c_str(), a_.c_str()), SyscallSucceeds());
  ASSERT_THAT(link(a_.c_str(), b_.c_str()), SyscallSucceeds());
  ASSERT_THAT(rename(a_.c_str(), b_.c_str()), SyscallSucceeds());
  // Both names remain: they were links to one file.
  EXPECT_TRUE(Exists(a_));
  EXPECT_TRUE(Exists(b_));
}

TEST_F(RenameTest, RenameSymlinkNotTarget) {
  std::string sym = dir_.Join("sym");
  ASSERT_THAT(symlink("a", sym.c_str()), SyscallSucceeds());
  ASSERT_THAT(rename(sym.c_str(), b_.c_str()), SyscallSucceeds());
  struct stat st;
  ASSERT_THAT(lstat(b_.c_str(), &st), SyscallSucceeds());
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_TRUE(Exists(a_));
}

TEST_F(RenameTest, NoReplace) {
  ASSERT_TRUE(WriteFile(b_, "B"));
  EXPECT_THAT(Renameat2(AT_FDCWD, a_, AT_FDCWD, b_, RENAME_NOREPLACE),
              SyscallFailsWithErrno(EEXIST));
  std::string c = dir_.Join("c");
  ASSERT_THAT(Renameat2(AT_FDCWD, a_, AT_FDCWD, c, RENAME_NOREPLACE),
              SyscallSucceeds());
  EXPECT_EQ(ReadFile(c), "A");
}

TEST_F(RenameTest, Exchange) {
  ASSERT_TRUE(WriteFile(b_, "B"));
  ASSERT_THAT(Renameat2(AT_FDCWD, a_, AT_FDCWD, b_, RENAME_EXCHANGE),
              SyscallSucceeds());
  EXPECT_EQ(ReadFile(a_), "B");
  EXPECT_EQ(ReadFile(b_), "A");
  // A file and a directory can trade places.
  std::string d = dir_.Join("d");
  ASSERT_THAT(mkdir(d.c_str(), 0755), SyscallSucceeds());
  ASSERT_THAT(Renameat2(AT_FDCWD, a_, AT_FDCWD, d, RENAME_EXCHANGE),
              SyscallSucceeds());
  struct stat st;
  ASSERT_THAT(stat(a_.c_str(), &st), SyscallSucceeds());
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_THAT(Renameat2(AT_FDCWD, b_, AT_FDCWD, dir_.Join("none"),
                        RENAME_EXCHANGE),
              SyscallFailsWithErrno(ENOENT));
}

TEST_F(RenameTest, BadFlags) {
  EXPECT_THAT(Renameat2(AT_FDCWD, a_, AT_FDCWD, b_, 0x80),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(Renameat2(AT_FDCWD, a_, AT_FDCWD, b_,
                        RENAME_EXCHANGE | RENAME_NOREPLACE),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(Renameat2(AT_FDCWD, a_, AT_FDCWD, b_,
                        RENAME_EXCHANGE | RENAME_WHITEOUT),
              SyscallFailsWithErrno(EINVAL));
}

TEST_F(RenameTest, WhiteoutLeavesCharDevice) {
  // tmpfs supports RENAME_WHITEOUT; the host's TEST_TMPDIR may not.
  struct stat st;
  int ret = Renameat2(AT_FDCWD, a_, AT_FDCWD, b_, RENAME_WHITEOUT);
  if (ret < 0 && errno == EINVAL && !IsRunningOnSandbox()) {
    GTEST_SKIP() << "the host filesystem lacks RENAME_WHITEOUT";
  }
  // overlayfs refuses RENAME_WHITEOUT (EINVAL), in Linux as in the sandbox,
  // whose root is an overlay.
  struct statfs sfs;
  if (ret < 0 && errno == EINVAL && statfs(dir_.path().c_str(), &sfs) == 0 &&
      sfs.f_type == kOverlayfsMagic) {
    GTEST_SKIP() << "overlayfs has no RENAME_WHITEOUT";
  }
  ASSERT_THAT(ret, SyscallSucceeds());
  ASSERT_THAT(lstat(a_.c_str(), &st), SyscallSucceeds());
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, 0u);
  EXPECT_EQ(ReadFile(b_), "A");
}

TEST_F(RenameTest, RenameatWithDirfds) {
  std::string d = dir_.Join("d");
  ASSERT_THAT(mkdir(d.c_str(), 0755), SyscallSucceeds());
  FileDescriptor src(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
  FileDescriptor dst(open(d.c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_THAT(renameat(src.get(), "a", dst.get(), "moved"), SyscallSucceeds());
  EXPECT_EQ(ReadFile(d + "/moved"), "A");
}

TEST_F(RenameTest, OpenFileFollowsRename) {
  FileDescriptor fd(open(a_.c_str(), O_RDWR));
  ASSERT_THAT(rename(a_.c_str(), b_.c_str()), SyscallSucceeds());
  ASSERT_THAT(write(fd.get(), "Z", 1), SyscallSucceedsWithValue(1));
  EXPECT_EQ(ReadFile(b_), "Z");
}

TEST_F(RenameTest, CwdFollowsRename) {
  std::string d = dir_.Join("d");
  ASSERT_THAT(mkdir(d.c_str(), 0755), SyscallSucceeds());
  char old[4096];
  ASSERT_NE(getcwd(old, sizeof(old)), nullptr);
  ASSERT_THAT(chdir(d.c_str()), SyscallSucceeds());
  ASSERT_THAT(rename(d.c_str(), dir_.Join("e").c_str()), SyscallSucceeds());
  char buf[4096];
  ASSERT_NE(getcwd(buf, sizeof(buf)), nullptr);
  EXPECT_EQ(std::string(buf), dir_.Join("e"));
  ASSERT_THAT(chdir(old), SyscallSucceeds());
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
