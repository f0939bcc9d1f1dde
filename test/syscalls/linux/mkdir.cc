// mkdir(2), mkdirat(2), rmdir(2).

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/fs_util.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

class MkdirTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(dir_.path().empty()); }
  TempDir dir_;
};

TEST_F(MkdirTest, CreatesDirectoryWithModeAndUmask) {
  mode_t old = umask(027);
  std::string d = dir_.Join("d");
  ASSERT_THAT(mkdir(d.c_str(), 0777), SyscallSucceeds());
  umask(old);
  struct stat st;
  ASSERT_THAT(stat(d.c_str(), &st), SyscallSucceeds());
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0750u);
}

TEST_F(MkdirTest, StickyBitKeptSetIdDropped) {
  umask(0);
  std::string d = dir_.Join("d");
  ASSERT_THAT(mkdir(d.c_str(), 07777), SyscallSucceeds());
  struct stat st;
  ASSERT_THAT(stat(d.c_str(), &st), SyscallSucceeds());
  EXPECT_EQ(st.st_mode & 07777, 01777u);
  umask(022);
}

TEST_F(MkdirTest, SetgidParentIsInherited) {
  std::string p = dir_.Join("p");
  ASSERT_THAT(mkdir(p.c_str(), 0755), SyscallSucceeds());
  ASSERT_THAT(chmod(p.c_str(), 02755), SyscallSucceeds());
  std::string c = p + "/c";
  ASSERT_THAT(mkdir(c.c_str(), 0755), SyscallSucceeds());
  struct stat st;
  ASSERT_THAT(stat(c.c_str(), &st), SyscallSucceeds());
  EXPECT_TRUE(st.st_mode & S_ISGID);
}

TEST_F(MkdirTest, Errors) {
  std::string d = dir_.Join("d");
  ASSERT_THAT(mkdir(d.c_str(), 0755), SyscallSucceeds());
  EXPECT_THAT(mkdir(d.c_str(), 0755), SyscallFailsWithErrno(EEXIST));
  EXPECT_THAT(mkdir((d + "/").c_str(), 0755), SyscallFailsWithErrno(EEXIST));
  EXPECT_THAT(mkdir(dir_.Join("a/b").c_str(), 0755),
              SyscallFailsWithErrno(ENOENT));
  ASSERT_TRUE(WriteFile(dir_.Join("f"), ""));
  EXPECT_THAT(mkdir(dir_.Join("f/x").c_str(), 0755),
              SyscallFailsWithErrno(ENOTDIR));
  EXPECT_THAT(mkdir(dir_.Join("f").c_str(), 0755),
              SyscallFailsWithErrno(EEXIST));
  EXPECT_THAT(mkdir("", 0755), SyscallFailsWithErrno(ENOENT));
  EXPECT_THAT(mkdir("/", 0755), SyscallFailsWithErrno(EEXIST));
  EXPECT_THAT(mkdir((d + "/.").c_str(), 0755), SyscallFailsWithErrno(EEXIST));
  EXPECT_THAT(mkdir(dir_.Join(std::string(NAME_MAX + 1, 'n')).c_str(), 0755),
              SyscallFailsWithErrno(ENAMETOOLONG));
  // A dangling symlink is not followed: the name exists.
  ASSERT_THAT(symlink("nowhere", dir_.Join("l").c_str()), SyscallSucceeds());
  EXPECT_THAT(mkdir(dir_.Join("l").c_str(), 0755), SyscallFailsWithErrno(EEXIST));
}

TEST_F(MkdirTest, TrailingSlashAccepted) {
  ASSERT_THAT(mkdir(dir_.Join("d/").c_str(), 0755), SyscallSucceeds());
  ASSERT_THAT(rmdir(dir_.Join("d/").c_str()), SyscallSucceeds());
}

TEST_F(MkdirTest, MkdiratRelativeToDirfd) {
  FileDescriptor dfd(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_THAT(mkdirat(dfd.get(), "sub", 0755), SyscallSucceeds());
  EXPECT_TRUE(Exists(dir_.Join("sub")));
  EXPECT_THAT(mkdirat(-1, "x", 0755), SyscallFailsWithErrno(EBADF));
}

TEST_F(MkdirTest, RmdirRemovesEmptyDirectory) {
  std::string d = dir_.Join("d");
  ASSERT_THAT(mkdir(d.c_str(), 0755), SyscallSucceeds());
  ASSERT_THAT(rmdir(d.c_str()), SyscallSucceeds());
  EXPECT_FALSE(Exists(d));
  struct stat st;
  ASSERT_THAT(stat(dir_.path().c_str(), &st), SyscallSucceeds());
  EXPECT_EQ(st.st_nlink, 2u);
}

TEST_F(MkdirTest, RmdirErrors) {
  std::string d = dir_.Join("d");
  ASSERT_THAT(mkdir(d.c_str(), 0755), SyscallSucceeds());
  ASSERT_TRUE(WriteFile(d + "/f", ""));
  EXPECT_THAT(rmdir(d.c_str()), SyscallFailsWithErrno(ENOTEMPTY));
  EXPECT_THAT(rmdir((d + "/f").c_str()), SyscallFailsWithErrno(ENOTDIR));
  EXPECT_THAT(rmdir(dir_.Join("nope").c_str()), SyscallFailsWithErrno(ENOENT));
  EXPECT_THAT(rmdir((d + "/.").c_str()), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(rmdir((d + "/..").c_str()), SyscallFailsWithErrno(ENOTEMPTY));
  EXPECT_THAT(rmdir("/"), SyscallFailsWithErrno(EBUSY));
  ASSERT_THAT(symlink("d", dir_.Join("l").c_str()), SyscallSucceeds());
  EXPECT_THAT(rmdir(dir_.Join("l").c_str()), SyscallFailsWithErrno(ENOTDIR));
}

TEST_F(MkdirTest, RemovedCwdIsGoneButUsable) {
  std::string d = dir_.Join("d");
  ASSERT_THAT(mkdir(d.c_str(), 0755), SyscallSucceeds());
  char old[PATH_MAX];
  ASSERT_NE(getcwd(old, sizeof(old)), nullptr);
  ASSERT_THAT(chdir(d.c_str()), SyscallSucceeds());
  ASSERT_THAT(rmdir(d.c_str()), SyscallSucceeds());
  char buf[PATH_MAX];
  EXPECT_EQ(getcwd(buf, sizeof(buf)), nullptr);
  EXPECT_EQ(errno, ENOENT);
  // Nothing can be created in a deleted directory.
  EXPECT_THAT(mkdir("x", 0755), SyscallFailsWithErrno(ENOENT));
  EXPECT_THAT(open("f", O_CREAT | O_RDWR, 0644), SyscallFailsWithErrno(ENOENT));
  ASSERT_THAT(chdir(old), SyscallSucceeds());
}

TEST_F(MkdirTest, NoWritePermissionIsEaccesForNonRoot) {
  TempDir pub("/tmp");
  ASSERT_THAT(chmod(pub.path().c_str(), 0755), SyscallSucceeds());
  std::string d = pub.Join("x");
  EXPECT_EQ(RunAsNobody([&] { return mkdir(d.c_str(), 0755) ? errno : 0; }),
            EACCES);
}

TEST_F(MkdirTest, StickyDirectoryProtectsOthersFiles) {
  TempDir pub("/tmp");
  ASSERT_THAT(chmod(pub.path().c_str(), 01777), SyscallSucceeds());
  std::string f = pub.Join("rootfile");
  ASSERT_TRUE(WriteFile(f, ""));
  EXPECT_EQ(RunAsNobody([&] { return unlink(f.c_str()) ? errno : 0; }), EPERM);
  std::string mine = pub.Join("mine");
  EXPECT_EQ(RunAsNobody([&] {
              int fd = open(mine.c_str(), O_CREAT | O_RDWR, 0644);
              if (fd < 0) return 100;
              close(fd);
              return unlink(mine.c_str()) ? errno : 0;
            }),
            0);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
