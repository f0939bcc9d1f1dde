// sendfile(2), splice(2), tee(2), copy_file_range(2).

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
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

struct Pipe {
  FileDescriptor r, w;
};

Pipe MakePipe(int flags = 0) {
  int fds[2] = {-1, -1};
  EXPECT_THAT(pipe2(fds, flags | O_CLOEXEC), SyscallSucceeds());
  return {FileDescriptor(fds[0]), FileDescriptor(fds[1])};
}

std::string Drain(int fd, size_t n) {
  std::string out(n, '\0');
  ssize_t got = read(fd, out.data(), n);
  out.resize(got < 0 ? 0 : got);
  return out;
}

class SpliceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    src_ = dir_.Join("src");
    ASSERT_TRUE(WriteFile(src_, "0123456789abcdefghij"));
    dst_ = dir_.Join("dst");
    ASSERT_TRUE(WriteFile(dst_, ""));
  }
  TempDir dir_;
  std::string src_, dst_;
};

TEST_F(SpliceTest, SendfileFileToFile) {
  FileDescriptor in(open(src_.c_str(), O_RDONLY));
  FileDescriptor out(open(dst_.c_str(), O_WRONLY));
  EXPECT_THAT(sendfile(out.get(), in.get(), nullptr, 5), SyscallSucceedsWithValue(5));
  EXPECT_THAT(lseek(in.get(), 0, SEEK_CUR), SyscallSucceedsWithValue(5));
  off_t off = 10;
  EXPECT_THAT(sendfile(out.get(), in.get(), &off, 100), SyscallSucceedsWithValue(10));
  EXPECT_EQ(off, 20);
  // With an offset pointer the file offset stays put.
  EXPECT_THAT(lseek(in.get(), 0, SEEK_CUR), SyscallSucceedsWithValue(5));
  EXPECT_EQ(ReadFile(dst_), "01234abcdefghij");
}

TEST_F(SpliceTest, SendfileToPipe) {
  FileDescriptor in(open(src_.c_str(), O_RDONLY));
  Pipe p = MakePipe();
  EXPECT_THAT(sendfile(p.w.get(), in.get(), nullptr, 4), SyscallSucceedsWithValue(4));
  EXPECT_EQ(Drain(p.r.get(), 10), "0123");
}

// A stream source gives what it has: sendfile returns after a short read
// instead of waiting for the rest of count (busybox cat sendfiles from its
// standard input, a terminal or a socket).
TEST_F(SpliceTest, SendfileFromSocketReturnsWhatIsThere) {
  int sv[2];
  ASSERT_THAT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
              SyscallSucceeds());
  FileDescriptor a(sv[0]), b(sv[1]);
  ASSERT_THAT(write(b.get(), "abc", 3), SyscallSucceedsWithValue(3));
  Pipe p = MakePipe();
  EXPECT_THAT(sendfile(p.w.get(), a.get(), nullptr, 100),
              SyscallSucceedsWithValue(3));
  EXPECT_EQ(Drain(p.r.get(), 10), "abc");
}

TEST_F(SpliceTest, SendfileErrors) {
  FileDescriptor in(open(src_.c_str(), O_RDONLY));
  FileDescriptor out(open(dst_.c_str(), O_WRONLY));
  FileDescriptor app(open(dst_.c_str(), O_WRONLY | O_APPEND));
  EXPECT_THAT(sendfile(in.get(), out.get(), nullptr, 1), SyscallFailsWithErrno(EBADF));
  EXPECT_THAT(sendfile(app.get(), in.get(), nullptr, 1), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(sendfile(-1, in.get(), nullptr, 1), SyscallFailsWithErrno(EBADF));
  off_t neg = -1;
  EXPECT_THAT(sendfile(out.get(), in.get(), &neg, 1), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(sendfile(out.get(), in.get(), nullptr, 0), SyscallSucceedsWithValue(0));
}

TEST_F(SpliceTest, SpliceFileToPipeAndBack) {
  FileDescriptor in(open(src_.c_str(), O_RDONLY));
  FileDescriptor out(open(dst_.c_str(), O_WRONLY));
  Pipe p = MakePipe();
  loff_t off = 2;
  EXPECT_THAT(splice(in.get(), &off, p.w.get(), nullptr, 6, 0),
              SyscallSucceedsWithValue(6));
  EXPECT_EQ(off, 8);
  EXPECT_THAT(lseek(in.get(), 0, SEEK_CUR), SyscallSucceedsWithValue(0));
  loff_t outoff = 0;
  EXPECT_THAT(splice(p.r.get(), nullptr, out.get(), &outoff, 100, 0),
              SyscallSucceedsWithValue(6));
  EXPECT_EQ(outoff, 6);
  EXPECT_EQ(ReadFile(dst_), "234567");
  // Without offsets the file offsets move.
  EXPECT_THAT(splice(in.get(), nullptr, p.w.get(), nullptr, 3, 0),
              SyscallSucceedsWithValue(3));
  EXPECT_THAT(lseek(in.get(), 0, SEEK_CUR), SyscallSucceedsWithValue(3));
  EXPECT_EQ(Drain(p.r.get(), 10), "012");
}

TEST_F(SpliceTest, SplicePipeToPipe) {
  Pipe a = MakePipe(), b = MakePipe();
  ASSERT_THAT(write(a.w.get(), "hello", 5), SyscallSucceedsWithValue(5));
  EXPECT_THAT(splice(a.r.get(), nullptr, b.w.get(), nullptr, 3, 0),
              SyscallSucceedsWithValue(3));
  EXPECT_EQ(Drain(b.r.get(), 10), "hel");
  EXPECT_EQ(Drain(a.r.get(), 10), "lo");
}

TEST_F(SpliceTest, SpliceErrors) {
  FileDescriptor in(open(src_.c_str(), O_RDONLY));
  FileDescriptor out(open(dst_.c_str(), O_WRONLY));
  Pipe p = MakePipe(O_NONBLOCK);
  EXPECT_THAT(splice(in.get(), nullptr, out.get(), nullptr, 1, 0),
              SyscallFailsWithErrno(EINVAL));
  loff_t off = 0;
  EXPECT_THAT(splice(p.r.get(), &off, out.get(), nullptr, 1, 0),
              SyscallFailsWithErrno(ESPIPE));
  EXPECT_THAT(splice(in.get(), nullptr, p.w.get(), nullptr, 1, 0x100),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(splice(p.r.get(), nullptr, p.w.get(), nullptr, 1, 0),
              SyscallFailsWithErrno(EINVAL));
  // Nothing to move from an empty non-blocking pipe.
  EXPECT_THAT(splice(p.r.get(), nullptr, out.get(), nullptr, 1, SPLICE_F_NONBLOCK),
              SyscallFailsWithErrno(EAGAIN));
  EXPECT_THAT(splice(in.get(), nullptr, p.w.get(), nullptr, 0, 0),
              SyscallSucceedsWithValue(0));
}

TEST_F(SpliceTest, Tee) {
  Pipe a = MakePipe(), b = MakePipe();
  ASSERT_THAT(write(a.w.get(), "duplicate", 9), SyscallSucceedsWithValue(9));
  EXPECT_THAT(tee(a.r.get(), b.w.get(), 4, 0), SyscallSucceedsWithValue(4));
  EXPECT_EQ(Drain(b.r.get(), 10), "dupl");
  // tee does not consume.
  EXPECT_EQ(Drain(a.r.get(), 20), "duplicate");
  FileDescriptor f(open(src_.c_str(), O_RDONLY));
  EXPECT_THAT(tee(f.get(), b.w.get(), 1, 0), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(tee(a.r.get(), a.w.get(), 1, 0), SyscallFailsWithErrno(EINVAL));
}

TEST_F(SpliceTest, CopyFileRange) {
  FileDescriptor in(open(src_.c_str(), O_RDONLY));
  FileDescriptor out(open(dst_.c_str(), O_WRONLY));
  loff_t ioff = 5, ooff = 0;
  EXPECT_THAT(copy_file_range(in.get(), &ioff, out.get(), &ooff, 5, 0),
              SyscallSucceedsWithValue(5));
  EXPECT_EQ(ioff, 10);
  EXPECT_EQ(ooff, 5);
  EXPECT_EQ(ReadFile(dst_), "56789");
  EXPECT_THAT(copy_file_range(in.get(), nullptr, out.get(), nullptr, 100, 0),
              SyscallSucceedsWithValue(20));
  EXPECT_THAT(lseek(out.get(), 0, SEEK_CUR), SyscallSucceedsWithValue(20));
  // At the end of the input there is nothing to copy.
  EXPECT_THAT(copy_file_range(in.get(), nullptr, out.get(), nullptr, 100, 0),
              SyscallSucceedsWithValue(0));
}

TEST_F(SpliceTest, CopyFileRangeErrors) {
  FileDescriptor in(open(src_.c_str(), O_RDONLY));
  FileDescriptor out(open(dst_.c_str(), O_WRONLY));
  FileDescriptor rw(open(src_.c_str(), O_RDWR));
  EXPECT_THAT(copy_file_range(in.get(), nullptr, out.get(), nullptr, 1, 1),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(copy_file_range(out.get(), nullptr, in.get(), nullptr, 1, 0),
              SyscallFailsWithErrno(EBADF));
  loff_t a = 0, b = 2;
  EXPECT_THAT(copy_file_range(rw.get(), &a, rw.get(), &b, 5, 0),
              SyscallFailsWithErrno(EINVAL));
  FileDescriptor d(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
  EXPECT_THAT(copy_file_range(d.get(), nullptr, out.get(), nullptr, 1, 0),
              SyscallFailsWithErrno(EISDIR));
  Pipe p = MakePipe();
  EXPECT_THAT(copy_file_range(in.get(), nullptr, p.w.get(), nullptr, 1, 0),
              SyscallFailsWithErrno(EINVAL));
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
