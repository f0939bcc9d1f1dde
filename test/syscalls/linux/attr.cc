// chmod(2) family, chown(2) family, utimensat(2) and friends, access(2)
// family, truncate(2), ftruncate(2), umask(2).

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>
#include <utime.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/fs_util.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

class AttrTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    file_ = dir_.Join("file");
    ASSERT_TRUE(WriteFile(file_, "0123456789"));
  }
  mode_t Mode(const std::string& p) {
    struct stat st;
    EXPECT_THAT(lstat(p.c_str(), &st), SyscallSucceeds());
    return st.st_mode;
  }
  TempDir dir_;
  std::string file_;
};

TEST_F(AttrTest, Chmod) {
  ASSERT_THAT(chmod(file_.c_str(), 0751), SyscallSucceeds());
  EXPECT_EQ(Mode(file_) & 07777, 0751u);
  FileDescriptor fd(open(file_.c_str(), O_RDONLY));
  ASSERT_THAT(fchmod(fd.get(), 04700), SyscallSucceeds());
  EXPECT_EQ(Mode(file_) & 07777, 04700u);
  ASSERT_THAT(fchmodat(AT_FDCWD, file_.c_str(), 0600, 0), SyscallSucceeds());
  EXPECT_EQ(Mode(file_) & 07777, 0600u);
  // Bits beyond the permission bits are ignored.
  ASSERT_THAT(chmod(file_.c_str(), 0170644), SyscallSucceeds());
  EXPECT_EQ(Mode(file_), S_IFREG | 0644u);
  EXPECT_THAT(chmod(dir_.Join("nope").c_str(), 0644),
              SyscallFailsWithErrno(ENOENT));
  EXPECT_THAT(fchmod(-1, 0644), SyscallFailsWithErrno(EBADF));
}

TEST_F(AttrTest, ChmodFollowsSymlinks) {
  std::string l = dir_.Join("l");
  ASSERT_THAT(symlink("file", l.c_str()), SyscallSucceeds());
  ASSERT_THAT(chmod(l.c_str(), 0640), SyscallSucceeds());
  EXPECT_EQ(Mode(file_) & 07777, 0640u);
  EXPECT_EQ(Mode(l) & 07777, 0777u);
}

TEST_F(AttrTest, Fchmodat2NoFollowOnSymlinkIsEopnotsupp) {
  std::string l = dir_.Join("l");
  ASSERT_THAT(symlink("file", l.c_str()), SyscallSucceeds());
  long r = syscall(452 /* fchmodat2 */, AT_FDCWD, l.c_str(), 0600,
                   AT_SYMLINK_NOFOLLOW);
  EXPECT_THAT(r, SyscallFailsWithErrno(EOPNOTSUPP));
  EXPECT_THAT(syscall(452, AT_FDCWD, file_.c_str(), 0600, 0x1),
              SyscallFailsWithErrno(EINVAL));
}

TEST_F(AttrTest, ChownAsRoot) {
  ASSERT_THAT(chown(file_.c_str(), 1234, 5678), SyscallSucceeds());
  struct stat st;
  ASSERT_THAT(stat(file_.c_str(), &st), SyscallSucceeds());
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 5678u);
  // -1 leaves an id as it is.
  ASSERT_THAT(chown(file_.c_str(), -1, 42), SyscallSucceeds());
  ASSERT_THAT(stat(file_.c_str(), &st), SyscallSucceeds());
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 42u);
  FileDescriptor fd(open(file_.c_str(), O_RDONLY));
  ASSERT_THAT(fchown(fd.get(), 0, 0), SyscallSucceeds());
  ASSERT_THAT(fstat(fd.get(), &st), SyscallSucceeds());
  EXPECT_EQ(st.st_uid, 0u);
}

TEST_F(AttrTest, ChownClearsSetuid) {
  ASSERT_THAT(chmod(file_.c_str(), 06755), SyscallSucceeds());
  ASSERT_THAT(chown(file_.c_str(), -1, -1), SyscallSucceeds());
  EXPECT_EQ(Mode(file_) & 07777, 0755u);
}

TEST_F(AttrTest, LchownChangesLink) {
  std::string l = dir_.Join("l");
  ASSERT_THAT(symlink("file", l.c_str()), SyscallSucceeds());
  ASSERT_THAT(lchown(l.c_str(), 7, 7), SyscallSucceeds());
  struct stat st;
  ASSERT_THAT(lstat(l.c_str(), &st), SyscallSucceeds());
  EXPECT_EQ(st.st_uid, 7u);
  ASSERT_THAT(stat(file_.c_str(), &st), SyscallSucceeds());
  EXPECT_EQ(st.st_uid, geteuid());
  ASSERT_THAT(fchownat(AT_FDCWD, l.c_str(), 8, 8, AT_SYMLINK_NOFOLLOW),
              SyscallSucceeds());
  EXPECT_THAT(fchownat(AT_FDCWD, l.c_str(), 8, 8, 0x1),
              SyscallFailsWithErrno(EINVAL));
}

TEST_F(AttrTest, ChownByNonOwnerIsEperm) {
  TempDir pub("/tmp");
  ASSERT_THAT(chmod(pub.path().c_str(), 0755), SyscallSucceeds());
  std::string f = pub.Join("f");
  ASSERT_TRUE(WriteFile(f, ""));
  EXPECT_EQ(RunAsNobody([&] { return chown(f.c_str(), kNobody, -1) ? errno : 0; }),
            EPERM);
  EXPECT_EQ(RunAsNobody([&] { return chmod(f.c_str(), 0777) ? errno : 0; }),
            EPERM);
}

TEST_F(AttrTest, UtimensatSetsTimes) {
  struct timespec ts[2] = {{1000, 5}, {2000, 6}};
  ASSERT_THAT(utimensat(AT_FDCWD, file_.c_str(), ts, 0), SyscallSucceeds());
  struct stat st;
  ASSERT_THAT(stat(file_.c_str(), &st), SyscallSucceeds());
  EXPECT_EQ(st.st_atim.tv_sec, 1000);
  EXPECT_EQ(st.st_atim.tv_nsec, 5);
  EXPECT_EQ(st.st_mtim.tv_sec, 2000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 6);
  // UTIME_OMIT leaves one alone; UTIME_NOW sets the current time.
  struct timespec ts2[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
  ASSERT_THAT(utimensat(AT_FDCWD, file_.c_str(), ts2, 0), SyscallSucceeds());
  ASSERT_THAT(stat(file_.c_str(), &st), SyscallSucceeds());
  EXPECT_EQ(st.st_atim.tv_sec, 1000);
  EXPECT_GT(st.st_mtim.tv_sec, 2000);
  // NULL: both now.
  ASSERT_THAT(utimensat(AT_FDCWD, file_.c_str(), nullptr, 0), SyscallSucceeds());
  ASSERT_THAT(stat(file_.c_str(), &st), SyscallSucceeds());
  EXPECT_GT(st.st_atim.tv_sec, 1000);
}

TEST_F(AttrTest, UtimensatErrors) {
  struct timespec bad[2] = {{0, 1000000000}, {0, 0}};
  EXPECT_THAT(utimensat(AT_FDCWD, file_.c_str(), bad, 0),
              SyscallFailsWithErrno(EINVAL));
  struct timespec ts[2] = {{0, 0}, {0, 0}};
  EXPECT_THAT(utimensat(AT_FDCWD, file_.c_str(), ts, 0x1),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(utimensat(AT_FDCWD, dir_.Join("nope").c_str(), ts, 0),
              SyscallFailsWithErrno(ENOENT));
  // Both UTIME_OMIT: nothing to do, not even the path is looked at.
  struct timespec omit[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
  EXPECT_THAT(utimensat(AT_FDCWD, dir_.Join("nope").c_str(), omit, 0),
              SyscallSucceeds());
}

TEST_F(AttrTest, FutimensAndUtimes) {
  FileDescriptor fd(open(file_.c_str(), O_RDONLY));
  struct timespec ts[2] = {{10, 0}, {20, 0}};
  ASSERT_THAT(futimens(fd.get(), ts), SyscallSucceeds());
  struct stat st;
  ASSERT_THAT(stat(file_.c_str(), &st), SyscallSucceeds());
  EXPECT_EQ(st.st_mtim.tv_sec, 20);
  struct timeval tv[2] = {{30, 1}, {40, 2}};
  ASSERT_THAT(utimes(file_.c_str(), tv), SyscallSucceeds());
  ASSERT_THAT(stat(file_.c_str(), &st), SyscallSucceeds());
  EXPECT_EQ(st.st_mtim.tv_sec, 40);
  EXPECT_EQ(st.st_mtim.tv_nsec, 2000);
  struct timeval badtv[2] = {{30, 1000000}, {40, 2}};
  EXPECT_THAT(utimes(file_.c_str(), badtv), SyscallFailsWithErrno(EINVAL));
  struct utimbuf ub = {50, 60};
  ASSERT_THAT(utime(file_.c_str(), &ub), SyscallSucceeds());
  ASSERT_THAT(stat(file_.c_str(), &st), SyscallSucceeds());
  EXPECT_EQ(st.st_atim.tv_sec, 50);
  EXPECT_EQ(st.st_mtim.tv_sec, 60);
}

TEST_F(AttrTest, Access) {
  EXPECT_THAT(access(file_.c_str(), F_OK), SyscallSucceeds());
  EXPECT_THAT(access(file_.c_str(), R_OK | W_OK), SyscallSucceeds());
  EXPECT_THAT(access(dir_.Join("nope").c_str(), F_OK),
              SyscallFailsWithErrno(ENOENT));
  EXPECT_THAT(access(file_.c_str(), 0x10), SyscallFailsWithErrno(EINVAL));
  // Root may execute only what someone may execute.
  ASSERT_THAT(chmod(file_.c_str(), 0644), SyscallSucceeds());
  EXPECT_THAT(access(file_.c_str(), X_OK), SyscallFailsWithErrno(EACCES));
  ASSERT_THAT(chmod(file_.c_str(), 0744), SyscallSucceeds());
  EXPECT_THAT(access(file_.c_str(), X_OK), SyscallSucceeds());
  EXPECT_THAT(faccessat(AT_FDCWD, file_.c_str(), R_OK, AT_EACCESS),
              SyscallSucceeds());
  EXPECT_THAT(syscall(SYS_faccessat2, AT_FDCWD, file_.c_str(), R_OK, 0x1),
              SyscallFailsWithErrno(EINVAL));
}

TEST_F(AttrTest, AccessAsNobody) {
  TempDir pub("/tmp");
  ASSERT_THAT(chmod(pub.path().c_str(), 0755), SyscallSucceeds());
  std::string f = pub.Join("f");
  ASSERT_TRUE(WriteFile(f, ""));
  ASSERT_THAT(chmod(f.c_str(), 0604), SyscallSucceeds());
  EXPECT_EQ(RunAsNobody([&] { return access(f.c_str(), R_OK) ? errno : 0; }), 0);
  EXPECT_EQ(RunAsNobody([&] { return access(f.c_str(), W_OK) ? errno : 0; }),
            EACCES);
}

TEST_F(AttrTest, Truncate) {
  ASSERT_THAT(truncate(file_.c_str(), 4), SyscallSucceeds());
  EXPECT_EQ(ReadFile(file_), "0123");
  ASSERT_THAT(truncate(file_.c_str(), 6), SyscallSucceeds());
  EXPECT_EQ(ReadFile(file_), std::string("0123\0\0", 6));
  EXPECT_THAT(truncate(file_.c_str(), -1), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(truncate(dir_.path().c_str(), 0), SyscallFailsWithErrno(EISDIR));
  EXPECT_THAT(truncate(dir_.Join("nope").c_str(), 0),
              SyscallFailsWithErrno(ENOENT));
}

TEST_F(AttrTest, Ftruncate) {
  FileDescriptor fd(open(file_.c_str(), O_RDWR));
  ASSERT_THAT(ftruncate(fd.get(), 3), SyscallSucceeds());
  EXPECT_EQ(ReadFile(file_), "012");
  // Shrinking then growing leaves zeroes, not the old bytes.
  ASSERT_THAT(ftruncate(fd.get(), 1), SyscallSucceeds());
  ASSERT_THAT(ftruncate(fd.get(), 3), SyscallSucceeds());
  EXPECT_EQ(ReadFile(file_), std::string("0\0\0", 3));
  FileDescriptor ro(open(file_.c_str(), O_RDONLY));
  EXPECT_THAT(ftruncate(ro.get(), 0), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(ftruncate(fd.get(), -1), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(ftruncate(-1, 0), SyscallFailsWithErrno(EBADF));
  int p[2];
  ASSERT_THAT(pipe(p), SyscallSucceeds());
  FileDescriptor r(p[0]), w(p[1]);
  EXPECT_THAT(ftruncate(w.get(), 0), SyscallFailsWithErrno(EINVAL));
}

TEST_F(AttrTest, TruncateLargeSparse) {
  FileDescriptor fd(open(file_.c_str(), O_RDWR));
  ASSERT_THAT(ftruncate(fd.get(), 1L << 40), SyscallSucceeds());
  struct stat st;
  ASSERT_THAT(fstat(fd.get(), &st), SyscallSucceeds());
  EXPECT_EQ(st.st_size, 1L << 40);
  char c = 'x';
  EXPECT_THAT(pread(fd.get(), &c, 1, (1L << 40) - 1), SyscallSucceedsWithValue(1));
  EXPECT_EQ(c, 0);
  ASSERT_THAT(ftruncate(fd.get(), 0), SyscallSucceeds());
}

TEST_F(AttrTest, Umask) {
  mode_t old = umask(0077);
  EXPECT_EQ(umask(0022), 0077u);
  EXPECT_EQ(umask(01777), 0022u);
  EXPECT_EQ(umask(old), 0777u);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
