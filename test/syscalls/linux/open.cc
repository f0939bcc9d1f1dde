// open(2), openat(2), creat(2) and close(2): flags, modes, errors.

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

class OpenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    file_ = dir_.Join("file");
    ASSERT_TRUE(WriteFile(file_, "hello"));
  }

  TempDir dir_;
  std::string file_;
};

TEST_F(OpenTest, ReadsExistingFile) {
  FileDescriptor fd(open(file_.c_str(), O_RDONLY));
  ASSERT_THAT(fd.get(), SyscallSucceeds());
  char buf[16] = {};
  EXPECT_THAT(read(fd.get(), buf, sizeof(buf)), SyscallSucceedsWithValue(5));
  EXPECT_STREQ(buf, "hello");
}

TEST_F(OpenTest, MissingIsEnoent) {
  EXPECT_THAT(open(dir_.Join("nope").c_str(), O_RDONLY),
              SyscallFailsWithErrno(ENOENT));
  EXPECT_THAT(open(dir_.Join("nope/x").c_str(), O_RDONLY),
              SyscallFailsWithErrno(ENOENT));
}

TEST_F(OpenTest, EmptyPathIsEnoent) {
  EXPECT_THAT(open("", O_RDONLY), SyscallFailsWithErrno(ENOENT));
}

TEST_F(OpenTest, BadPathPointerIsEfault) {
  EXPECT_THAT(syscall(SYS_open, reinterpret_cast<char*>(1), O_RDONLY),
              SyscallFailsWithErrno(EFAULT));
}

TEST_F(OpenTest, FileAsDirectoryIsEnotdir) {
  EXPECT_THAT(open((file_ + "/x").c_str(), O_RDONLY),
              SyscallFailsWithErrno(ENOTDIR));
  EXPECT_THAT(open((file_ + "/").c_str(), O_RDONLY),
              SyscallFailsWithErrno(ENOTDIR));
  EXPECT_THAT(open(file_.c_str(), O_RDONLY | O_DIRECTORY),
              SyscallFailsWithErrno(ENOTDIR));
}

TEST_F(OpenTest, DirectoryForWritingIsEisdir) {
  EXPECT_THAT(open(dir_.path().c_str(), O_WRONLY),
              SyscallFailsWithErrno(EISDIR));
  EXPECT_THAT(open(dir_.path().c_str(), O_RDWR), SyscallFailsWithErrno(EISDIR));
  EXPECT_THAT(open(dir_.path().c_str(), O_RDONLY | O_CREAT, 0644),
              SyscallFailsWithErrno(EISDIR));
  FileDescriptor fd(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
  EXPECT_THAT(fd.get(), SyscallSucceeds());
  char c;
  EXPECT_THAT(read(fd.get(), &c, 1), SyscallFailsWithErrno(EISDIR));
}

TEST_F(OpenTest, CreateMakesFileWithModeAndUmask) {
  mode_t old = umask(022);
  std::string p = dir_.Join("new");
  FileDescriptor fd(open(p.c_str(), O_WRONLY | O_CREAT, 0777));
  umask(old);
  ASSERT_THAT(fd.get(), SyscallSucceeds());
  struct stat st;
  ASSERT_THAT(fstat(fd.get(), &st), SyscallSucceeds());
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_EQ(st.st_size, 0);
  EXPECT_EQ(st.st_uid, geteuid());
}

TEST_F(OpenTest, CreateExclusiveOfExistingIsEexist) {
  EXPECT_THAT(open(file_.c_str(), O_RDWR | O_CREAT | O_EXCL, 0644),
              SyscallFailsWithErrno(EEXIST));
  std::string link = dir_.Join("dangling");
  ASSERT_THAT(symlink(dir_.Join("target").c_str(), link.c_str()),
              SyscallSucceeds());
  // O_EXCL does not follow a final symlink, even a dangling one.
  EXPECT_THAT(open(link.c_str(), O_RDWR | O_CREAT | O_EXCL, 0644),
              SyscallFailsWithErrno(EEXIST));
  EXPECT_FALSE(Exists(dir_.Join("target")));
}

TEST_F(OpenTest, CreateThroughDanglingSymlinkCreatesTarget) {
  std::string link = dir_.Join("dangling");
  ASSERT_THAT(symlink("target", link.c_str()), SyscallSucceeds());
  FileDescriptor fd(open(link.c_str(), O_RDWR | O_CREAT, 0644));
  ASSERT_THAT(fd.get(), SyscallSucceeds());
  EXPECT_TRUE(Exists(dir_.Join("target")));
}

TEST_F(OpenTest, CreateWithTrailingSlashIsEisdir) {
  EXPECT_THAT(open(dir_.Join("new/").c_str(), O_RDWR | O_CREAT, 0644),
              SyscallFailsWithErrno(EISDIR));
}

TEST_F(OpenTest, CreateDirectoryFlagIsEinval) {
  EXPECT_THAT(
      open(dir_.Join("new").c_str(), O_RDWR | O_CREAT | O_DIRECTORY, 0644),
      SyscallFailsWithErrno(EINVAL));
}

TEST_F(OpenTest, CreatedFileIsWritableWhateverItsMode) {
  // The file just created may be opened for writing even with mode 0.
  FileDescriptor fd(open(dir_.Join("m0").c_str(), O_RDWR | O_CREAT, 0));
  ASSERT_THAT(fd.get(), SyscallSucceeds());
  EXPECT_THAT(write(fd.get(), "x", 1), SyscallSucceedsWithValue(1));
}

TEST_F(OpenTest, TruncateEmptiesFile) {
  FileDescriptor fd(open(file_.c_str(), O_WRONLY | O_TRUNC));
  ASSERT_THAT(fd.get(), SyscallSucceeds());
  struct stat st;
  ASSERT_THAT(fstat(fd.get(), &st), SyscallSucceeds());
  EXPECT_EQ(st.st_size, 0);
}

TEST_F(OpenTest, CreatTruncatesAndOpensWriteOnly) {
  FileDescriptor fd(creat(file_.c_str(), 0644));
  ASSERT_THAT(fd.get(), SyscallSucceeds());
  EXPECT_EQ(fcntl(fd.get(), F_GETFL) & O_ACCMODE, O_WRONLY);
  char c;
  EXPECT_THAT(read(fd.get(), &c, 1), SyscallFailsWithErrno(EBADF));
  EXPECT_EQ(ReadFile(file_), "");
}

TEST_F(OpenTest, AppendWritesAtEnd) {
  FileDescriptor fd(open(file_.c_str(), O_WRONLY | O_APPEND));
  ASSERT_THAT(fd.get(), SyscallSucceeds());
  ASSERT_THAT(lseek(fd.get(), 0, SEEK_SET), SyscallSucceeds());
  EXPECT_THAT(write(fd.get(), "!", 1), SyscallSucceedsWithValue(1));
  EXPECT_EQ(ReadFile(file_), "hello!");
  // pwrite on an O_APPEND file appends too, on Linux.
  EXPECT_THAT(pwrite(fd.get(), "?", 1, 0), SyscallSucceedsWithValue(1));
  EXPECT_EQ(ReadFile(file_), "hello!?");
}

TEST_F(OpenTest, StatusFlagsAsF_GETFLShowsThem) {
  FileDescriptor fd(
      open(file_.c_str(), O_RDWR | O_APPEND | O_NONBLOCK | O_CLOEXEC | O_TRUNC));
  ASSERT_THAT(fd.get(), SyscallSucceeds());
  int flags = fcntl(fd.get(), F_GETFL);
  EXPECT_EQ(flags & O_ACCMODE, O_RDWR);
  EXPECT_TRUE(flags & O_APPEND);
  EXPECT_TRUE(flags & O_NONBLOCK);
  // glibc defines O_LARGEFILE as 0 on x86-64; the kernel's value is 0100000.
  EXPECT_TRUE(flags & 0100000);
  EXPECT_FALSE(flags & (O_CLOEXEC | O_TRUNC | O_CREAT));
  EXPECT_EQ(fcntl(fd.get(), F_GETFD), FD_CLOEXEC);
}

TEST_F(OpenTest, NoFollowOnSymlinkIsEloop) {
  std::string link = dir_.Join("link");
  ASSERT_THAT(symlink(file_.c_str(), link.c_str()), SyscallSucceeds());
  EXPECT_THAT(open(link.c_str(), O_RDONLY | O_NOFOLLOW),
              SyscallFailsWithErrno(ELOOP));
  // Only the last component is concerned.
  std::string dlink = dir_.Join("dlink");
  ASSERT_THAT(symlink(dir_.path().c_str(), dlink.c_str()), SyscallSucceeds());
  FileDescriptor fd(open((dlink + "/file").c_str(), O_RDONLY | O_NOFOLLOW));
  EXPECT_THAT(fd.get(), SyscallSucceeds());
}

TEST_F(OpenTest, SymlinkLoopIsEloop) {
  std::string a = dir_.Join("a"), b = dir_.Join("b");
  ASSERT_THAT(symlink(b.c_str(), a.c_str()), SyscallSucceeds());
  ASSERT_THAT(symlink(a.c_str(), b.c_str()), SyscallSucceeds());
  EXPECT_THAT(open(a.c_str(), O_RDONLY), SyscallFailsWithErrno(ELOOP));
}

TEST_F(OpenTest, FortyLinksFollowFortyOneDoNot) {
  // A chain of n links: link0 -> link1 -> ... -> file.
  auto chain = [&](const std::string& prefix, int n) {
    std::string next = file_;
    for (int i = n - 1; i >= 0; i--) {
      std::string name = dir_.Join(prefix + std::to_string(i));
      EXPECT_THAT(symlink(next.c_str(), name.c_str()), SyscallSucceeds());
      next = name;
    }
    return next;
  };
  std::string forty = chain("x", 40);
  FileDescriptor fd(open(forty.c_str(), O_RDONLY));
  EXPECT_THAT(fd.get(), SyscallSucceeds());
  std::string forty_one = chain("y", 41);
  EXPECT_THAT(open(forty_one.c_str(), O_RDONLY), SyscallFailsWithErrno(ELOOP));
}

TEST_F(OpenTest, LongNamesAreEnametoolong) {
  std::string name(NAME_MAX + 1, 'a');
  EXPECT_THAT(open(dir_.Join(name).c_str(), O_RDONLY),
              SyscallFailsWithErrno(ENAMETOOLONG));
  EXPECT_THAT(open(dir_.Join(name).c_str(), O_RDWR | O_CREAT, 0644),
              SyscallFailsWithErrno(ENAMETOOLONG));
  std::string path(PATH_MAX, 'b');
  EXPECT_THAT(open(path.c_str(), O_RDONLY), SyscallFailsWithErrno(ENAMETOOLONG));
}

TEST_F(OpenTest, DotDotAtRootStaysAtRoot) {
  // Compared with "/.." rather than "/": where something is mounted over
  // the root (as in some containers), "/" names the mount on top while ".."
  // stays on the root itself.
  struct stat root, up;
  ASSERT_THAT(stat("/..", &root), SyscallSucceeds());
  ASSERT_THAT(stat("/../../..", &up), SyscallSucceeds());
  EXPECT_EQ(root.st_ino, up.st_ino);
  EXPECT_EQ(root.st_dev, up.st_dev);
}

TEST_F(OpenTest, OpenatRelativeToDirfd) {
  FileDescriptor dfd(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_THAT(dfd.get(), SyscallSucceeds());
  FileDescriptor fd(openat(dfd.get(), "file", O_RDONLY));
  EXPECT_THAT(fd.get(), SyscallSucceeds());
  // An absolute path ignores dirfd.
  FileDescriptor abs(openat(-1, file_.c_str(), O_RDONLY));
  EXPECT_THAT(abs.get(), SyscallSucceeds());
}

TEST_F(OpenTest, OpenatBadDirfd) {
  EXPECT_THAT(openat(-1, "file", O_RDONLY), SyscallFailsWithErrno(EBADF));
  EXPECT_THAT(openat(1 << 20, "file", O_RDONLY), SyscallFailsWithErrno(EBADF));
  FileDescriptor ffd(open(file_.c_str(), O_RDONLY));
  ASSERT_THAT(ffd.get(), SyscallSucceeds());
  EXPECT_THAT(openat(ffd.get(), "x", O_RDONLY), SyscallFailsWithErrno(ENOTDIR));
}

TEST_F(OpenTest, OPathAllowsStatButNotIo) {
  FileDescriptor fd(open(file_.c_str(), O_PATH));
  ASSERT_THAT(fd.get(), SyscallSucceeds());
  char c;
  EXPECT_THAT(read(fd.get(), &c, 1), SyscallFailsWithErrno(EBADF));
  EXPECT_THAT(write(fd.get(), "x", 1), SyscallFailsWithErrno(EBADF));
  struct stat st;
  EXPECT_THAT(fstat(fd.get(), &st), SyscallSucceeds());
  EXPECT_EQ(st.st_size, 5);
  EXPECT_THAT(fchmod(fd.get(), 0600), SyscallFailsWithErrno(EBADF));
  EXPECT_THAT(fcntl(fd.get(), F_SETFL, O_NONBLOCK), SyscallFailsWithErrno(EBADF));
  EXPECT_EQ(fcntl(fd.get(), F_GETFL), O_PATH);
}

TEST_F(OpenTest, OPathNoFollowOpensSymlinkItself) {
  std::string link = dir_.Join("link");
  ASSERT_THAT(symlink("file", link.c_str()), SyscallSucceeds());
  FileDescriptor fd(open(link.c_str(), O_PATH | O_NOFOLLOW));
  ASSERT_THAT(fd.get(), SyscallSucceeds());
  struct stat st;
  ASSERT_THAT(fstat(fd.get(), &st), SyscallSucceeds());
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  char buf[16] = {};
  EXPECT_THAT(readlinkat(fd.get(), "", buf, sizeof(buf)),
              SyscallSucceedsWithValue(4));
  EXPECT_STREQ(buf, "file");
}

TEST_F(OpenTest, OPathDirectoryServesAsDirfd) {
  FileDescriptor dfd(open(dir_.path().c_str(), O_PATH | O_DIRECTORY));
  ASSERT_THAT(dfd.get(), SyscallSucceeds());
  FileDescriptor fd(openat(dfd.get(), "file", O_RDONLY));
  EXPECT_THAT(fd.get(), SyscallSucceeds());
}

TEST_F(OpenTest, TmpfileIsUnnamedUntilLinked) {
  FileDescriptor fd(open(dir_.path().c_str(), O_TMPFILE | O_RDWR, 0600));
  ASSERT_THAT(fd.get(), SyscallSucceeds());
  EXPECT_THAT(write(fd.get(), "data", 4), SyscallSucceedsWithValue(4));
  struct stat st;
  ASSERT_THAT(fstat(fd.get(), &st), SyscallSucceeds());
  EXPECT_EQ(st.st_nlink, 0u);
  std::string named = dir_.Join("named");
  ASSERT_THAT(linkat(fd.get(), "", AT_FDCWD, named.c_str(), AT_EMPTY_PATH),
              SyscallSucceeds());
  EXPECT_EQ(ReadFile(named), "data");
}

TEST_F(OpenTest, TmpfileNeedsWriteAccess) {
  EXPECT_THAT(open(dir_.path().c_str(), O_TMPFILE | O_RDONLY, 0600),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(open(file_.c_str(), O_TMPFILE | O_RDWR, 0600),
              SyscallFailsWithErrno(ENOTDIR));
}

TEST_F(OpenTest, UnlinkedFileStaysReadableWhileOpen) {
  FileDescriptor fd(open(file_.c_str(), O_RDONLY));
  ASSERT_THAT(fd.get(), SyscallSucceeds());
  ASSERT_THAT(unlink(file_.c_str()), SyscallSucceeds());
  char buf[8] = {};
  EXPECT_THAT(read(fd.get(), buf, sizeof(buf)), SyscallSucceedsWithValue(5));
  struct stat st;
  ASSERT_THAT(fstat(fd.get(), &st), SyscallSucceeds());
  EXPECT_EQ(st.st_nlink, 0u);
}

TEST_F(OpenTest, CloseTwiceIsEbadf) {
  int fd = open(file_.c_str(), O_RDONLY);
  ASSERT_THAT(fd, SyscallSucceeds());
  EXPECT_THAT(close(fd), SyscallSucceeds());
  EXPECT_THAT(close(fd), SyscallFailsWithErrno(EBADF));
  EXPECT_THAT(close(-1), SyscallFailsWithErrno(EBADF));
}

TEST_F(OpenTest, LowestFreeDescriptorIsUsed) {
  FileDescriptor a(open(file_.c_str(), O_RDONLY));
  FileDescriptor b(open(file_.c_str(), O_RDONLY));
  ASSERT_THAT(b.get(), SyscallSucceeds());
  int want = a.get();
  a.reset();
  FileDescriptor c(open(file_.c_str(), O_RDONLY));
  EXPECT_EQ(c.get(), want);
}

TEST_F(OpenTest, ReadOnlyFileForWritingIsEaccesForNonRoot) {
  TempDir pub("/tmp");
  ASSERT_THAT(chmod(pub.path().c_str(), 0755), SyscallSucceeds());
  std::string f = pub.Join("f");
  ASSERT_TRUE(WriteFile(f, "x"));
  ASSERT_THAT(chmod(f.c_str(), 0444), SyscallSucceeds());
  EXPECT_EQ(RunAsNobody([&] {
              return open(f.c_str(), O_WRONLY) < 0 ? errno : 0;
            }),
            EACCES);
  EXPECT_EQ(RunAsNobody([&] {
              return open(f.c_str(), O_RDONLY) < 0 ? errno : 0;
            }),
            0);
  // Root is not stopped by permission bits.
  FileDescriptor fd(open(f.c_str(), O_WRONLY));
  EXPECT_THAT(fd.get(), SyscallSucceeds());
}

TEST_F(OpenTest, UnsearchableDirectoryIsEaccesForNonRoot) {
  TempDir pub("/tmp");
  ASSERT_THAT(chmod(pub.path().c_str(), 0755), SyscallSucceeds());
  std::string sub = pub.Join("sub");
  ASSERT_THAT(mkdir(sub.c_str(), 0755), SyscallSucceeds());
  ASSERT_TRUE(WriteFile(sub + "/f", "x"));
  ASSERT_THAT(chmod(sub.c_str(), 0644), SyscallSucceeds());
  std::string f = sub + "/f";
  EXPECT_EQ(RunAsNobody([&] {
              return open(f.c_str(), O_RDONLY) < 0 ? errno : 0;
            }),
            EACCES);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
