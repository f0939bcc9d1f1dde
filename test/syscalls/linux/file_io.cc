// Reading and writing files: lseek(2) (with SEEK_DATA and SEEK_HOLE),
// preadv2(2), pwritev2(2), fallocate(2), fsync(2), fdatasync(2), sync(2),
// syncfs(2), sync_file_range(2), posix_fadvise(2), readahead(2), and
// FIONREAD on files.

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/magic.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/fs_util.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

class FileIoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    file_ = dir_.Join("file");
    ASSERT_TRUE(WriteFile(file_, "0123456789"));
    fd_ = FileDescriptor(open(file_.c_str(), O_RDWR));
    ASSERT_THAT(fd_.get(), SyscallSucceeds());
  }
  bool OnTmpfs() {
    struct statfs sf;
    return fstatfs(fd_.get(), &sf) == 0 && sf.f_type == TMPFS_MAGIC;
  }
  TempDir dir_;
  std::string file_;
  FileDescriptor fd_;
};

TEST_F(FileIoTest, Lseek) {
  EXPECT_THAT(lseek(fd_.get(), 3, SEEK_SET), SyscallSucceedsWithValue(3));
  EXPECT_THAT(lseek(fd_.get(), 2, SEEK_CUR), SyscallSucceedsWithValue(5));
  EXPECT_THAT(lseek(fd_.get(), -1, SEEK_END), SyscallSucceedsWithValue(9));
  EXPECT_THAT(lseek(fd_.get(), 100, SEEK_END), SyscallSucceedsWithValue(110));
  EXPECT_THAT(lseek(fd_.get(), -1, SEEK_SET), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(lseek(fd_.get(), 0, 99), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(lseek(-1, 0, SEEK_SET), SyscallFailsWithErrno(EBADF));
  char c;
  ASSERT_THAT(lseek(fd_.get(), 4, SEEK_SET), SyscallSucceeds());
  ASSERT_THAT(read(fd_.get(), &c, 1), SyscallSucceedsWithValue(1));
  EXPECT_EQ(c, '4');
  // Writing past the end leaves a hole of zeroes.
  ASSERT_THAT(lseek(fd_.get(), 20, SEEK_SET), SyscallSucceeds());
  ASSERT_THAT(write(fd_.get(), "z", 1), SyscallSucceeds());
  EXPECT_EQ(ReadFile(file_), std::string("0123456789") + std::string(10, '\0') + "z");
}

TEST_F(FileIoTest, SeekDataAndHole) {
  SKIP_IF(!OnTmpfs());
  ASSERT_THAT(ftruncate(fd_.get(), 3 * 4096), SyscallSucceeds());
  ASSERT_THAT(pwrite(fd_.get(), "x", 1, 2 * 4096 + 5), SyscallSucceeds());
  // Data: the first page and the third; a hole in the second.
  EXPECT_THAT(lseek(fd_.get(), 0, SEEK_DATA), SyscallSucceedsWithValue(0));
  EXPECT_THAT(lseek(fd_.get(), 0, SEEK_HOLE), SyscallSucceedsWithValue(4096));
  EXPECT_THAT(lseek(fd_.get(), 4100, SEEK_DATA), SyscallSucceedsWithValue(8192));
  EXPECT_THAT(lseek(fd_.get(), 8192, SEEK_HOLE), SyscallSucceedsWithValue(3 * 4096));
  EXPECT_THAT(lseek(fd_.get(), 3 * 4096, SEEK_DATA), SyscallFailsWithErrno(ENXIO));
}

TEST_F(FileIoTest, Preadv2Pwritev2) {
  char a[3] = {}, b[3] = {};
  struct iovec iov[2] = {{a, 2}, {b, 2}};
  EXPECT_THAT(preadv2(fd_.get(), iov, 2, 4, 0), SyscallSucceedsWithValue(4));
  EXPECT_STREQ(a, "45");
  EXPECT_STREQ(b, "67");
  // An offset of -1 uses (and moves) the file offset.
  EXPECT_THAT(preadv2(fd_.get(), iov, 2, -1, 0), SyscallSucceedsWithValue(4));
  EXPECT_THAT(lseek(fd_.get(), 0, SEEK_CUR), SyscallSucceedsWithValue(4));
  EXPECT_THAT(preadv2(fd_.get(), iov, 2, 0, 0x10000000),
              SyscallFailsWithErrno(EOPNOTSUPP));
  struct iovec w = {const_cast<char*>("AB"), 2};
  EXPECT_THAT(pwritev2(fd_.get(), &w, 1, 0, 0), SyscallSucceedsWithValue(2));
  EXPECT_THAT(pwritev2(fd_.get(), &w, 1, 0, RWF_APPEND), SyscallSucceedsWithValue(2));
  EXPECT_EQ(ReadFile(file_), "AB23456789AB");
}

TEST_F(FileIoTest, Fallocate) {
  ASSERT_THAT(fallocate(fd_.get(), 0, 0, 8192), SyscallSucceeds());
  struct stat st;
  ASSERT_THAT(fstat(fd_.get(), &st), SyscallSucceeds());
  EXPECT_EQ(st.st_size, 8192);
  EXPECT_GE(st.st_blocks, 16);
  ASSERT_THAT(fallocate(fd_.get(), FALLOC_FL_KEEP_SIZE, 8192, 4096), SyscallSucceeds());
  ASSERT_THAT(fstat(fd_.get(), &st), SyscallSucceeds());
  EXPECT_EQ(st.st_size, 8192);
  // Punching a hole zeroes the range.
  ASSERT_THAT(fallocate(fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 2, 3),
              SyscallSucceeds());
  char buf[10];
  ASSERT_THAT(pread(fd_.get(), buf, 10, 0), SyscallSucceedsWithValue(10));
  EXPECT_EQ(std::string(buf, 10), std::string("01\0\0\0" "56789", 10));
}

TEST_F(FileIoTest, FallocateErrors) {
  EXPECT_THAT(fallocate(fd_.get(), 0, -1, 10), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(fallocate(fd_.get(), 0, 0, 0), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(fallocate(fd_.get(), FALLOC_FL_PUNCH_HOLE, 0, 1),
              SyscallFailsWithErrno(EOPNOTSUPP));
  FileDescriptor ro(open(file_.c_str(), O_RDONLY));
  EXPECT_THAT(fallocate(ro.get(), 0, 0, 1), SyscallFailsWithErrno(EBADF));
  int p[2];
  ASSERT_THAT(pipe(p), SyscallSucceeds());
  FileDescriptor r(p[0]), w(p[1]);
  EXPECT_THAT(fallocate(w.get(), 0, 0, 1), SyscallFailsWithErrno(ESPIPE));
}

TEST_F(FileIoTest, SyncFamily) {
  EXPECT_THAT(fsync(fd_.get()), SyscallSucceeds());
  EXPECT_THAT(fdatasync(fd_.get()), SyscallSucceeds());
  sync();
  EXPECT_THAT(syncfs(fd_.get()), SyscallSucceeds());
  EXPECT_THAT(sync_file_range(fd_.get(), 0, 0, SYNC_FILE_RANGE_WRITE),
              SyscallSucceeds());
  EXPECT_THAT(sync_file_range(fd_.get(), -1, 0, 0), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(sync_file_range(fd_.get(), 0, 0, 0x8), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(fsync(-1), SyscallFailsWithErrno(EBADF));
  int p[2];
  ASSERT_THAT(pipe(p), SyscallSucceeds());
  FileDescriptor r(p[0]), w(p[1]);
  EXPECT_THAT(fsync(r.get()), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(sync_file_range(r.get(), 0, 0, 0), SyscallFailsWithErrno(ESPIPE));
  FileDescriptor d(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
  EXPECT_THAT(fsync(d.get()), SyscallSucceeds());
}

TEST_F(FileIoTest, FadviseAndReadahead) {
  EXPECT_EQ(posix_fadvise(fd_.get(), 0, 0, POSIX_FADV_SEQUENTIAL), 0);
  EXPECT_EQ(posix_fadvise(fd_.get(), 0, 0, 99), EINVAL);
  EXPECT_THAT(readahead(fd_.get(), 0, 100), SyscallSucceeds());
  int p[2];
  ASSERT_THAT(pipe(p), SyscallSucceeds());
  FileDescriptor r(p[0]), w(p[1]);
  EXPECT_EQ(posix_fadvise(r.get(), 0, 0, POSIX_FADV_NORMAL), ESPIPE);
}

TEST_F(FileIoTest, Fionread) {
  int n = -1;
  ASSERT_THAT(ioctl(fd_.get(), FIONREAD, &n), SyscallSucceeds());
  EXPECT_EQ(n, 10);
  ASSERT_THAT(lseek(fd_.get(), 7, SEEK_SET), SyscallSucceeds());
  ASSERT_THAT(ioctl(fd_.get(), FIONREAD, &n), SyscallSucceeds());
  EXPECT_EQ(n, 3);
  FileDescriptor d(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
  EXPECT_THAT(ioctl(d.get(), FIONREAD, &n), SyscallFailsWithErrno(ENOTTY));
}

TEST_F(FileIoTest, LargeWriteReadBack) {
  std::vector<char> big(3 * 1024 * 1024 + 123);
  for (size_t i = 0; i < big.size(); i++) big[i] = static_cast<char>(i * 7);
  ASSERT_THAT(pwrite(fd_.get(), big.data(), big.size(), 5000),
              SyscallSucceedsWithValue(big.size()));
  std::vector<char> back(big.size());
  ASSERT_THAT(pread(fd_.get(), back.data(), back.size(), 5000),
              SyscallSucceedsWithValue(back.size()));
  EXPECT_TRUE(back == big);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
