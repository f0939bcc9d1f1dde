// link(2), linkat(2), unlink(2), unlinkat(2), symlink(2), symlinkat(2),
// readlink(2), readlinkat(2).

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

class LinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    file_ = dir_.Join("file");
    ASSERT_TRUE(WriteFile(file_, "data"));
  }
  TempDir dir_;
  std::string file_;
};

TEST_F(LinkTest, HardLinkSharesInode) {
  std::string l = dir_.Join("hard");
  ASSERT_THAT(link(file_.c_str(), l.c_str()), SyscallSucceeds());
  struct stat a, b;
  ASSERT_THAT(stat(file_.c_str(), &a), SyscallSucceeds());
  ASSERT_THAT(stat(l.c_str(), &b), SyscallSucceeds());
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(a.st_nlink, 2u);
  ASSERT_THAT(unlink(file_.c_str()), SyscallSucceeds());
  EXPECT_EQ(ReadFile(l), "data");
  ASSERT_THAT(stat(l.c_str(), &b), SyscallSucceeds());
  EXPECT_EQ(b.st_nlink, 1u);
}

TEST_F(LinkTest, LinkErrors) {
  std::string l = dir_.Join("hard");
  EXPECT_THAT(link(dir_.Join("nope").c_str(), l.c_str()),
              SyscallFailsWithErrno(ENOENT));
  EXPECT_THAT(link(file_.c_str(), file_.c_str()), SyscallFailsWithErrno(EEXIST));
  EXPECT_THAT(link(dir_.path().c_str(), l.c_str()), SyscallFailsWithErrno(EPERM));
  EXPECT_THAT(link(file_.c_str(), dir_.Join("nodir/x").c_str()),
              SyscallFailsWithErrno(ENOENT));
  EXPECT_THAT(link(file_.c_str(), (l + "/").c_str()),
              SyscallFailsWithErrno(ENOENT));
  EXPECT_THAT(linkat(AT_FDCWD, file_.c_str(), AT_FDCWD, l.c_str(), 0x1),
              SyscallFailsWithErrno(EINVAL));
}

TEST_F(LinkTest, LinkDoesNotFollowSymlinkUnlessAsked) {
  std::string sym = dir_.Join("sym");
  ASSERT_THAT(symlink("file", sym.c_str()), SyscallSucceeds());
  std::string a = dir_.Join("a"), b = dir_.Join("b");
  ASSERT_THAT(link(sym.c_str(), a.c_str()), SyscallSucceeds());
  struct stat st;
  ASSERT_THAT(lstat(a.c_str(), &st), SyscallSucceeds());
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  ASSERT_THAT(linkat(AT_FDCWD, sym.c_str(), AT_FDCWD, b.c_str(),
                     AT_SYMLINK_FOLLOW),
              SyscallSucceeds());
  ASSERT_THAT(lstat(b.c_str(), &st), SyscallSucceeds());
  EXPECT_TRUE(S_ISREG(st.st_mode));
}

TEST_F(LinkTest, UnlinkErrors) {
  EXPECT_THAT(unlink(dir_.Join("nope").c_str()), SyscallFailsWithErrno(ENOENT));
  EXPECT_THAT(unlink(dir_.path().c_str()), SyscallFailsWithErrno(EISDIR));
  EXPECT_THAT(unlink((file_ + "/").c_str()), SyscallFailsWithErrno(ENOTDIR));
  EXPECT_THAT(unlink((file_ + "/x").c_str()), SyscallFailsWithErrno(ENOTDIR));
  EXPECT_THAT(unlink(""), SyscallFailsWithErrno(ENOENT));
  EXPECT_THAT(unlinkat(AT_FDCWD, file_.c_str(), 0x1),
              SyscallFailsWithErrno(EINVAL));
}

TEST_F(LinkTest, UnlinkatRemovedir) {
  std::string d = dir_.Join("d");
  ASSERT_THAT(mkdir(d.c_str(), 0755), SyscallSucceeds());
  EXPECT_THAT(unlinkat(AT_FDCWD, d.c_str(), 0), SyscallFailsWithErrno(EISDIR));
  EXPECT_THAT(unlinkat(AT_FDCWD, file_.c_str(), AT_REMOVEDIR),
              SyscallFailsWithErrno(ENOTDIR));
  ASSERT_THAT(unlinkat(AT_FDCWD, d.c_str(), AT_REMOVEDIR), SyscallSucceeds());
  EXPECT_FALSE(Exists(d));
}

TEST_F(LinkTest, UnlinkSymlinkRemovesLinkOnly) {
  std::string sym = dir_.Join("sym");
  ASSERT_THAT(symlink("file", sym.c_str()), SyscallSucceeds());
  ASSERT_THAT(unlink(sym.c_str()), SyscallSucceeds());
  EXPECT_TRUE(Exists(file_));
}

TEST_F(LinkTest, SymlinkAndReadlink) {
  std::string sym = dir_.Join("sym");
  ASSERT_THAT(symlink("some/where", sym.c_str()), SyscallSucceeds());
  char buf[64] = {};
  EXPECT_THAT(readlink(sym.c_str(), buf, sizeof(buf)),
              SyscallSucceedsWithValue(10));
  EXPECT_STREQ(buf, "some/where");
  // A short buffer truncates without a terminator.
  char small[4] = {'x', 'x', 'x', 'x'};
  EXPECT_THAT(readlink(sym.c_str(), small, 3), SyscallSucceedsWithValue(3));
  EXPECT_EQ(std::string(small, 4), "somx");
  FileDescriptor dfd(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
  EXPECT_THAT(readlinkat(dfd.get(), "sym", buf, sizeof(buf)),
              SyscallSucceedsWithValue(10));
}

TEST_F(LinkTest, SymlinkErrors) {
  std::string sym = dir_.Join("sym");
  EXPECT_THAT(symlink("", sym.c_str()), SyscallFailsWithErrno(ENOENT));
  EXPECT_THAT(symlink("x", file_.c_str()), SyscallFailsWithErrno(EEXIST));
  EXPECT_THAT(symlink("x", dir_.Join("no/x").c_str()),
              SyscallFailsWithErrno(ENOENT));
  std::string target(PATH_MAX, 't');
  EXPECT_THAT(symlink(target.c_str(), sym.c_str()),
              SyscallFailsWithErrno(ENAMETOOLONG));
}

TEST_F(LinkTest, ReadlinkErrors) {
  char buf[16];
  EXPECT_THAT(readlink(file_.c_str(), buf, sizeof(buf)),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(readlink(dir_.Join("nope").c_str(), buf, sizeof(buf)),
              SyscallFailsWithErrno(ENOENT));
  std::string sym = dir_.Join("sym");
  ASSERT_THAT(symlink("file", sym.c_str()), SyscallSucceeds());
  EXPECT_THAT(readlink(sym.c_str(), buf, 0), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_readlink, sym.c_str(), nullptr, 8),
              SyscallFailsWithErrno(EFAULT));
}

TEST_F(LinkTest, RelativeSymlinkResolvesFromItsDirectory) {
  std::string sub = dir_.Join("sub");
  ASSERT_THAT(mkdir(sub.c_str(), 0755), SyscallSucceeds());
  ASSERT_THAT(symlink("../file", (sub + "/up").c_str()), SyscallSucceeds());
  EXPECT_EQ(ReadFile(sub + "/up"), "data");
  // A symlink to a directory in the middle of a path.
  ASSERT_THAT(symlink(".", (sub + "/self").c_str()), SyscallSucceeds());
  EXPECT_EQ(ReadFile(sub + "/self/self/up"), "data");
}

TEST_F(LinkTest, AbsoluteSymlinkResolvesFromRoot) {
  std::string sym = dir_.Join("abs");
  ASSERT_THAT(symlink(file_.c_str(), sym.c_str()), SyscallSucceeds());
  EXPECT_EQ(ReadFile(sym), "data");
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
