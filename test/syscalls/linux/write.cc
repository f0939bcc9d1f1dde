// write(2), writev(2), pwrite64(2).
//
// The first tests use the standard output and error that every test program
// inherits (the sandbox can already write to them); the others write into a
// pipe and read back.

#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

// A descriptor no test program has open: above any RLIMIT_NOFILE a test
// runs with, so it can be neither open nor opened.
constexpr int kBadFd = 1 << 30;

// The raw calls, so that libc does nothing on the way.
long Write(int fd, const void* buf, size_t n) {
  return syscall(SYS_write, fd, buf, n);
}
long Writev(int fd, const struct iovec* iov, int n) {
  return syscall(SYS_writev, fd, iov, n);
}
long Pwrite(int fd, const void* buf, size_t n, off_t off) {
  return syscall(SYS_pwrite64, fd, buf, n, off);
}

TEST(WriteTest, Stdout) {
  const char msg[] = "write_test: a line on stdout\n";
  EXPECT_THAT(Write(STDOUT_FILENO, msg, strlen(msg)),
              SyscallSucceedsWithValue(strlen(msg)));
}

TEST(WriteTest, Stderr) {
  const char msg[] = "write_test: a line on stderr\n";
  EXPECT_THAT(Write(STDERR_FILENO, msg, strlen(msg)),
              SyscallSucceedsWithValue(strlen(msg)));
}

TEST(WriteTest, ZeroBytes) {
  EXPECT_THAT(Write(STDOUT_FILENO, "", 0), SyscallSucceedsWithValue(0));
  // Nothing is read from the buffer, so a bad pointer does not matter.
  EXPECT_THAT(Write(STDOUT_FILENO, nullptr, 0), SyscallSucceedsWithValue(0));
}

TEST(WriteTest, BadBufferIsEfault) {
  EXPECT_THAT(Write(STDOUT_FILENO, reinterpret_cast<void*>(1), 1),
              SyscallFailsWithErrno(EFAULT));
  EXPECT_THAT(Write(STDERR_FILENO, reinterpret_cast<void*>(-4096L), 16),
              SyscallFailsWithErrno(EFAULT));
}

TEST(WriteTest, BadFdIsEbadf) {
  EXPECT_THAT(Write(-1, "x", 1), SyscallFailsWithErrno(EBADF));
  EXPECT_THAT(Write(kBadFd, "x", 1), SyscallFailsWithErrno(EBADF));
  // The descriptor is checked before the buffer.
  EXPECT_THAT(Write(-1, nullptr, 1), SyscallFailsWithErrno(EBADF));
}

TEST(WritevTest, Stdout) {
  char a[] = "writev_test: ";
  char b[] = "two pieces";
  char c[] = "\n";
  struct iovec iov[] = {{a, strlen(a)}, {b, strlen(b)}, {c, strlen(c)}};
  EXPECT_THAT(Writev(STDOUT_FILENO, iov, 3),
              SyscallSucceedsWithValue(strlen(a) + strlen(b) + strlen(c)));
}

TEST(WritevTest, ZeroIovecs) {
  EXPECT_THAT(Writev(STDOUT_FILENO, nullptr, 0), SyscallSucceedsWithValue(0));
}

TEST(WritevTest, EmptyIovecsAreSkipped) {
  char a[] = "writev_test: empty pieces skipped\n";
  struct iovec iov[] = {{nullptr, 0}, {a, strlen(a)}, {nullptr, 0}};
  EXPECT_THAT(Writev(STDOUT_FILENO, iov, 3),
              SyscallSucceedsWithValue(strlen(a)));
}

// UIO_MAXIOV is 1024.
TEST(WritevTest, MaxIovecs) {
  std::vector<struct iovec> iov(IOV_MAX, {nullptr, 0});
  char nl[] = "\n";
  iov[IOV_MAX - 1] = {nl, 1};
  EXPECT_THAT(Writev(STDOUT_FILENO, iov.data(), IOV_MAX),
              SyscallSucceedsWithValue(1));
}

TEST(WritevTest, TooManyIovecsIsEinval) {
  std::vector<struct iovec> iov(IOV_MAX + 1, {nullptr, 0});
  EXPECT_THAT(Writev(STDOUT_FILENO, iov.data(), IOV_MAX + 1),
              SyscallFailsWithErrno(EINVAL));
}

TEST(WritevTest, NegativeCountIsEinval) {
  struct iovec iov = {nullptr, 0};
  EXPECT_THAT(Writev(STDOUT_FILENO, &iov, -1), SyscallFailsWithErrno(EINVAL));
}

// An iov_len that is negative as an ssize_t is refused (lib/iov_iter.c),
// even when earlier entries are fine.
TEST(WritevTest, NegativeLengthIsEinval) {
  char a[] = "x";
  struct iovec one = {a, static_cast<size_t>(-1)};
  EXPECT_THAT(Writev(STDOUT_FILENO, &one, 1), SyscallFailsWithErrno(EINVAL));
  struct iovec two[] = {{a, 1}, {a, static_cast<size_t>(SSIZE_MAX) + 1}};
  EXPECT_THAT(Writev(STDOUT_FILENO, two, 2), SyscallFailsWithErrno(EINVAL));
}

TEST(WritevTest, BadIovecArrayIsEfault) {
  EXPECT_THAT(Writev(STDOUT_FILENO, reinterpret_cast<struct iovec*>(1), 1),
              SyscallFailsWithErrno(EFAULT));
}

TEST(WritevTest, BadBufferIsEfault) {
  struct iovec iov = {reinterpret_cast<void*>(1), 1};
  EXPECT_THAT(Writev(STDOUT_FILENO, &iov, 1), SyscallFailsWithErrno(EFAULT));
}

TEST(WritevTest, BadFdIsEbadf) {
  char a[] = "x";
  struct iovec iov = {a, 1};
  EXPECT_THAT(Writev(-1, &iov, 1), SyscallFailsWithErrno(EBADF));
  EXPECT_THAT(Writev(kBadFd, &iov, 1), SyscallFailsWithErrno(EBADF));
}

// pwrite64 checks the offset before it looks at the descriptor
// (ksys_pwrite64 in fs/read_write.c).
TEST(PwriteTest, NegativeOffsetIsEinval) {
  EXPECT_THAT(Pwrite(STDOUT_FILENO, "x", 1, -1), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(Pwrite(-1, "x", 1, -1), SyscallFailsWithErrno(EINVAL));
}

TEST(PwriteTest, BadFdIsEbadf) {
  EXPECT_THAT(Pwrite(-1, "x", 1, 0), SyscallFailsWithErrno(EBADF));
}

// The tests below need pipe2(2), which the sandbox does not have yet.

TEST(WriteTest, PipeRoundTrip) {
  int fds[2];
  ASSERT_THAT(pipe2(fds, O_CLOEXEC), SyscallSucceeds());
  FileDescriptor r(fds[0]), w(fds[1]);

  const std::string msg = "hello, pipe";
  ASSERT_THAT(Write(w.get(), msg.data(), msg.size()),
              SyscallSucceedsWithValue(msg.size()));
  std::string got(msg.size(), '\0');
  ASSERT_THAT(read(r.get(), got.data(), got.size()),
              SyscallSucceedsWithValue(msg.size()));
  EXPECT_EQ(got, msg);
}

TEST(WritevTest, PipeGathersInOrder) {
  int fds[2];
  ASSERT_THAT(pipe2(fds, O_CLOEXEC), SyscallSucceeds());
  FileDescriptor r(fds[0]), w(fds[1]);

  char a[] = "abc", b[] = "", c[] = "defgh";
  struct iovec iov[] = {{a, 3}, {b, 0}, {c, 5}};
  ASSERT_THAT(Writev(w.get(), iov, 3), SyscallSucceedsWithValue(8));
  char got[9] = {};
  ASSERT_THAT(read(r.get(), got, 8), SyscallSucceedsWithValue(8));
  EXPECT_STREQ(got, "abcdefgh");
}

TEST(WriteTest, ReadOnlyFdIsEbadf) {
  int fds[2];
  ASSERT_THAT(pipe2(fds, O_CLOEXEC), SyscallSucceeds());
  FileDescriptor r(fds[0]), w(fds[1]);
  EXPECT_THAT(Write(r.get(), "x", 1), SyscallFailsWithErrno(EBADF));
}

TEST(PwriteTest, PipeIsEspipe) {
  int fds[2];
  ASSERT_THAT(pipe2(fds, O_CLOEXEC), SyscallSucceeds());
  FileDescriptor r(fds[0]), w(fds[1]);
  EXPECT_THAT(Pwrite(w.get(), "x", 1, 0), SyscallFailsWithErrno(ESPIPE));
}

TEST(PwriteTest, MemfdAtOffset) {
  FileDescriptor fd(memfd_create("pwrite_test", MFD_CLOEXEC));
  ASSERT_THAT(fd.get(), SyscallSucceeds());
  ASSERT_THAT(Pwrite(fd.get(), "abc", 3, 10), SyscallSucceedsWithValue(3));
  // The file offset did not move.
  EXPECT_THAT(lseek(fd.get(), 0, SEEK_CUR), SyscallSucceedsWithValue(0));
  char got[13];
  ASSERT_THAT(pread(fd.get(), got, sizeof(got), 0),
              SyscallSucceedsWithValue(13));
  EXPECT_EQ(std::string(got, 13), std::string(10, '\0') + "abc");
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
