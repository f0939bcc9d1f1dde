// stat(2), lstat(2), fstat(2), newfstatat(2), statx(2), statfs(2),
// fstatfs(2).

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
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

class StatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    file_ = dir_.Join("file");
    ASSERT_TRUE(WriteFile(file_, "0123456789"));
    link_ = dir_.Join("link");
    ASSERT_THAT(symlink("file", link_.c_str()), SyscallSucceeds());
  }

  TempDir dir_;
  std::string file_;
  std::string link_;
};

TEST_F(StatTest, RegularFile) {
  struct stat st;
  ASSERT_THAT(stat(file_.c_str(), &st), SyscallSucceeds());
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_size, 10);
  EXPECT_EQ(st.st_nlink, 1u);
  EXPECT_GT(st.st_blksize, 0);
  EXPECT_NE(st.st_ino, 0u);
}

TEST_F(StatTest, Directory) {
  struct stat st;
  ASSERT_THAT(stat(dir_.path().c_str(), &st), SyscallSucceeds());
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_nlink, 2u);
  ASSERT_THAT(mkdir(dir_.Join("sub").c_str(), 0755), SyscallSucceeds());
  ASSERT_THAT(stat(dir_.path().c_str(), &st), SyscallSucceeds());
  EXPECT_EQ(st.st_nlink, 3u);
}

TEST_F(StatTest, SymlinkFollowedOrNot) {
  struct stat st, lst, fst;
  ASSERT_THAT(stat(link_.c_str(), &st), SyscallSucceeds());
  ASSERT_THAT(lstat(link_.c_str(), &lst), SyscallSucceeds());
  ASSERT_THAT(stat(file_.c_str(), &fst), SyscallSucceeds());
  EXPECT_EQ(st.st_ino, fst.st_ino);
  EXPECT_TRUE(S_ISLNK(lst.st_mode));
  EXPECT_EQ(lst.st_size, 4);  // strlen("file")
  EXPECT_NE(lst.st_ino, fst.st_ino);
}

TEST_F(StatTest, FstatMatchesStat) {
  FileDescriptor fd(open(file_.c_str(), O_RDONLY));
  ASSERT_THAT(fd.get(), SyscallSucceeds());
  struct stat a, b;
  ASSERT_THAT(fstat(fd.get(), &a), SyscallSucceeds());
  ASSERT_THAT(stat(file_.c_str(), &b), SyscallSucceeds());
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(a.st_dev, b.st_dev);
  EXPECT_EQ(a.st_mode, b.st_mode);
}

TEST_F(StatTest, Errors) {
  struct stat st;
  EXPECT_THAT(stat(dir_.Join("nope").c_str(), &st), SyscallFailsWithErrno(ENOENT));
  EXPECT_THAT(stat((file_ + "/x").c_str(), &st), SyscallFailsWithErrno(ENOTDIR));
  EXPECT_THAT(stat("", &st), SyscallFailsWithErrno(ENOENT));
  EXPECT_THAT(syscall(SYS_stat, file_.c_str(), nullptr),
              SyscallFailsWithErrno(EFAULT));
  EXPECT_THAT(fstat(-1, &st), SyscallFailsWithErrno(EBADF));
  // A trailing slash on a symlink to a file: the link is followed and the
  // file is not a directory.
  EXPECT_THAT(lstat((link_ + "/").c_str(), &st), SyscallFailsWithErrno(ENOTDIR));
}

TEST_F(StatTest, FstatatFlags) {
  FileDescriptor dfd(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_THAT(dfd.get(), SyscallSucceeds());
  struct stat st;
  ASSERT_THAT(fstatat(dfd.get(), "link", &st, AT_SYMLINK_NOFOLLOW),
              SyscallSucceeds());
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  ASSERT_THAT(fstatat(dfd.get(), "link", &st, 0), SyscallSucceeds());
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_THAT(fstatat(dfd.get(), "link", &st, 0x10000),
              SyscallFailsWithErrno(EINVAL));
}

TEST_F(StatTest, FstatatEmptyPath) {
  FileDescriptor fd(open(file_.c_str(), O_RDONLY));
  ASSERT_THAT(fd.get(), SyscallSucceeds());
  struct stat st;
  EXPECT_THAT(fstatat(fd.get(), "", &st, 0), SyscallFailsWithErrno(ENOENT));
  ASSERT_THAT(fstatat(fd.get(), "", &st, AT_EMPTY_PATH), SyscallSucceeds());
  EXPECT_EQ(st.st_size, 10);
  // A pipe has attributes too.
  int p[2];
  ASSERT_THAT(pipe(p), SyscallSucceeds());
  FileDescriptor r(p[0]), w(p[1]);
  ASSERT_THAT(fstatat(r.get(), "", &st, AT_EMPTY_PATH), SyscallSucceeds());
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
}

TEST_F(StatTest, Statx) {
  struct statx stx;
  ASSERT_THAT(statx(AT_FDCWD, file_.c_str(), 0, STATX_BASIC_STATS, &stx),
              SyscallSucceeds());
  EXPECT_EQ(stx.stx_mask & STATX_BASIC_STATS, STATX_BASIC_STATS);
  EXPECT_EQ(stx.stx_size, 10u);
  EXPECT_TRUE(S_ISREG(stx.stx_mode));
  struct stat st;
  ASSERT_THAT(stat(file_.c_str(), &st), SyscallSucceeds());
  EXPECT_EQ(stx.stx_ino, st.st_ino);
  EXPECT_EQ(makedev(stx.stx_dev_major, stx.stx_dev_minor), st.st_dev);
  EXPECT_EQ(stx.stx_mtime.tv_sec, st.st_mtim.tv_sec);
  EXPECT_EQ(stx.stx_mtime.tv_nsec, static_cast<uint32_t>(st.st_mtim.tv_nsec));
  ASSERT_THAT(statx(AT_FDCWD, link_.c_str(), AT_SYMLINK_NOFOLLOW,
                    STATX_BASIC_STATS, &stx),
              SyscallSucceeds());
  EXPECT_TRUE(S_ISLNK(stx.stx_mode));
}

TEST_F(StatTest, StatxErrors) {
  struct statx stx;
  EXPECT_THAT(statx(AT_FDCWD, file_.c_str(), 0, STATX__RESERVED, &stx),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(statx(AT_FDCWD, file_.c_str(), 0x40000000, STATX_BASIC_STATS,
                    &stx),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(statx(AT_FDCWD, file_.c_str(),
                    AT_STATX_FORCE_SYNC | AT_STATX_DONT_SYNC, STATX_BASIC_STATS,
                    &stx),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(statx(AT_FDCWD, dir_.Join("nope").c_str(), 0, STATX_BASIC_STATS,
                    &stx),
              SyscallFailsWithErrno(ENOENT));
}

TEST_F(StatTest, StatfsOfTmp) {
  struct statfs sf;
  ASSERT_THAT(statfs(dir_.path().c_str(), &sf), SyscallSucceeds());
  EXPECT_GT(sf.f_bsize, 0);
  EXPECT_GT(sf.f_namelen, 0);
  FileDescriptor fd(open(file_.c_str(), O_RDONLY));
  struct statfs fsf;
  ASSERT_THAT(fstatfs(fd.get(), &fsf), SyscallSucceeds());
  EXPECT_EQ(fsf.f_type, sf.f_type);
  EXPECT_THAT(statfs(dir_.Join("nope").c_str(), &sf),
              SyscallFailsWithErrno(ENOENT));
  EXPECT_THAT(fstatfs(-1, &sf), SyscallFailsWithErrno(EBADF));
}

TEST_F(StatTest, SandboxTmpIsTmpfs) {
  // In the sandbox /tmp is the sentry's tmpfs.
  SKIP_IF(!IsRunningOnSandbox());
  struct statfs sf;
  ASSERT_THAT(statfs("/tmp", &sf), SyscallSucceeds());
  EXPECT_EQ(sf.f_type, TMPFS_MAGIC);
}

TEST_F(StatTest, SizeFollowsWrites) {
  FileDescriptor fd(open(file_.c_str(), O_WRONLY));
  ASSERT_THAT(pwrite(fd.get(), "x", 1, 100000), SyscallSucceedsWithValue(1));
  struct stat st;
  ASSERT_THAT(fstat(fd.get(), &st), SyscallSucceeds());
  EXPECT_EQ(st.st_size, 100001);
}

TEST_F(StatTest, MtimeAndCtimeMoveOnWrite) {
  struct stat before, after;
  ASSERT_THAT(stat(file_.c_str(), &before), SyscallSucceeds());
  struct timespec ts[2] = {{1, 0}, {1, 0}};
  ASSERT_THAT(utimensat(AT_FDCWD, file_.c_str(), ts, 0), SyscallSucceeds());
  ASSERT_TRUE(WriteFile(file_, "new"));
  ASSERT_THAT(stat(file_.c_str(), &after), SyscallSucceeds());
  EXPECT_GT(after.st_mtim.tv_sec, 1);
  EXPECT_GE(after.st_ctim.tv_sec, before.st_ctim.tv_sec);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
