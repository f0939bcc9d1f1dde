// read(2), readv(2), pread64(2).
//
// What a test's standard input is depends on who runs it, so the tests that
// read data use a pipe or a memfd.

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

constexpr int kBadFd = 1 << 30;

long Read(int fd, void* buf, size_t n) {
  return syscall(SYS_read, fd, buf, n);
}
long Readv(int fd, const struct iovec* iov, int n) {
  return syscall(SYS_readv, fd, iov, n);
}
long Pread(int fd, void* buf, size_t n, off_t off) {
  return syscall(SYS_pread64, fd, buf, n, off);
}

// Pipe is a pipe whose ends close with it.
struct Pipe {
  FileDescriptor r, w;
};

Pipe MakePipe() {
  int fds[2];
  EXPECT_THAT(pipe2(fds, O_CLOEXEC), SyscallSucceeds());
  return {FileDescriptor(fds[0]), FileDescriptor(fds[1])};
}

TEST(ReadTest, BadFdIsEbadf) {
  char buf[1];
  EXPECT_THAT(Read(-1, buf, 1), SyscallFailsWithErrno(EBADF));
  EXPECT_THAT(Read(kBadFd, buf, 1), SyscallFailsWithErrno(EBADF));
  EXPECT_THAT(Read(-1, nullptr, 1), SyscallFailsWithErrno(EBADF));
}

TEST(ReadvTest, BadFdIsEbadf) {
  char buf[1];
  struct iovec iov = {buf, 1};
  EXPECT_THAT(Readv(-1, &iov, 1), SyscallFailsWithErrno(EBADF));
  EXPECT_THAT(Readv(kBadFd, &iov, 1), SyscallFailsWithErrno(EBADF));
}

// pread64 checks the offset before it looks at the descriptor
// (ksys_pread64 in fs/read_write.c).
TEST(PreadTest, NegativeOffsetIsEinval) {
  char buf[1];
  EXPECT_THAT(Pread(-1, buf, 1, -1), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(Pread(kBadFd, buf, 1, -4096), SyscallFailsWithErrno(EINVAL));
}

TEST(PreadTest, BadFdIsEbadf) {
  char buf[1];
  EXPECT_THAT(Pread(-1, buf, 1, 0), SyscallFailsWithErrno(EBADF));
}

TEST(ReadTest, Pipe) {
  Pipe p = MakePipe();
  ASSERT_THAT(write(p.w.get(), "abcdef", 6), SyscallSucceedsWithValue(6));
  char buf[4] = {};
  // A read returns what is there, up to the count.
  EXPECT_THAT(Read(p.r.get(), buf, 3), SyscallSucceedsWithValue(3));
  EXPECT_STREQ(buf, "abc");
  char rest[8] = {};
  EXPECT_THAT(Read(p.r.get(), rest, sizeof(rest)), SyscallSucceedsWithValue(3));
  EXPECT_STREQ(rest, "def");
}

TEST(ReadTest, ZeroBytes) {
  Pipe p = MakePipe();
  EXPECT_THAT(Read(p.r.get(), nullptr, 0), SyscallSucceedsWithValue(0));
}

TEST(ReadTest, EofAfterWriterCloses) {
  Pipe p = MakePipe();
  p.w.reset();
  char buf[1];
  EXPECT_THAT(Read(p.r.get(), buf, 1), SyscallSucceedsWithValue(0));
}

TEST(ReadTest, NonblockingEmptyIsEagain) {
  int fds[2];
  ASSERT_THAT(pipe2(fds, O_CLOEXEC | O_NONBLOCK), SyscallSucceeds());
  FileDescriptor r(fds[0]), w(fds[1]);
  char buf[1];
  EXPECT_THAT(Read(r.get(), buf, 1), SyscallFailsWithErrno(EAGAIN));
}

TEST(ReadTest, BadBufferIsEfault) {
  Pipe p = MakePipe();
  ASSERT_THAT(write(p.w.get(), "x", 1), SyscallSucceedsWithValue(1));
  EXPECT_THAT(Read(p.r.get(), reinterpret_cast<void*>(1), 1),
              SyscallFailsWithErrno(EFAULT));
}

TEST(ReadTest, WriteOnlyFdIsEbadf) {
  Pipe p = MakePipe();
  char buf[1];
  EXPECT_THAT(Read(p.w.get(), buf, 1), SyscallFailsWithErrno(EBADF));
}

TEST(ReadvTest, ScattersInOrder) {
  Pipe p = MakePipe();
  ASSERT_THAT(write(p.w.get(), "abcdefgh", 8), SyscallSucceedsWithValue(8));
  char a[3] = {}, b[1] = {}, c[5] = {};
  struct iovec iov[] = {{a, 2}, {b, 0}, {c, 4}};
  ASSERT_THAT(Readv(p.r.get(), iov, 3), SyscallSucceedsWithValue(6));
  EXPECT_STREQ(a, "ab");
  EXPECT_STREQ(c, "cdef");
}

TEST(ReadvTest, TooManyIovecsIsEinval) {
  Pipe p = MakePipe();
  std::vector<struct iovec> iov(IOV_MAX + 1, {nullptr, 0});
  EXPECT_THAT(Readv(p.r.get(), iov.data(), IOV_MAX + 1),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(Readv(p.r.get(), iov.data(), -1), SyscallFailsWithErrno(EINVAL));
}

TEST(ReadvTest, NegativeLengthIsEinval) {
  Pipe p = MakePipe();
  char a[1];
  struct iovec iov = {a, static_cast<size_t>(-1)};
  EXPECT_THAT(Readv(p.r.get(), &iov, 1), SyscallFailsWithErrno(EINVAL));
}

TEST(PreadTest, PipeIsEspipe) {
  Pipe p = MakePipe();
  char buf[1];
  EXPECT_THAT(Pread(p.r.get(), buf, 1, 0), SyscallFailsWithErrno(ESPIPE));
}

TEST(PreadTest, MemfdAtOffsets) {
  FileDescriptor fd(memfd_create("pread_test", MFD_CLOEXEC));
  ASSERT_THAT(fd.get(), SyscallSucceeds());
  ASSERT_THAT(write(fd.get(), "0123456789", 10), SyscallSucceedsWithValue(10));

  char buf[4] = {};
  EXPECT_THAT(Pread(fd.get(), buf, 3, 4), SyscallSucceedsWithValue(3));
  EXPECT_STREQ(buf, "456");
  // Short at the end of the file, zero past it.
  EXPECT_THAT(Pread(fd.get(), buf, 3, 8), SyscallSucceedsWithValue(2));
  EXPECT_THAT(Pread(fd.get(), buf, 3, 100), SyscallSucceedsWithValue(0));
  // The file offset is where write left it.
  EXPECT_THAT(lseek(fd.get(), 0, SEEK_CUR), SyscallSucceedsWithValue(10));
}

// OnePage is one writable page followed by an inaccessible one.
struct OnePage {
  OnePage() {
    base = static_cast<char*>(mmap(nullptr, 2 * kPage, PROT_READ | PROT_WRITE,
                                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    EXPECT_NE(base, MAP_FAILED);
    EXPECT_THAT(mprotect(base + kPage, kPage, PROT_NONE), SyscallSucceeds());
  }
  ~OnePage() { munmap(base, 2 * kPage); }
  static constexpr size_t kPage = 4096;
  char* base;
};

// A read stops where its buffer does: what could not be delivered stays in
// the pipe for the next read.
TEST(ReadTest, PipeDataPastABadBufferStays) {
  Pipe p = MakePipe();
  std::string data(2 * OnePage::kPage, 'a');
  for (size_t i = 0; i < data.size(); i++) data[i] = 'a' + i % 26;
  ASSERT_THAT(write(p.w.get(), data.data(), data.size()),
              SyscallSucceedsWithValue(data.size()));
  OnePage page;
  ASSERT_THAT(Read(p.r.get(), page.base, data.size()),
              SyscallSucceedsWithValue(OnePage::kPage));
  EXPECT_EQ(std::string(page.base, OnePage::kPage), data.substr(0, OnePage::kPage));
  ASSERT_THAT(Read(p.r.get(), page.base, OnePage::kPage),
              SyscallSucceedsWithValue(OnePage::kPage));
  EXPECT_EQ(std::string(page.base, OnePage::kPage), data.substr(OnePage::kPage));
}

// The largest count into a one-page buffer reads one page of a huge sparse
// file (and must not cost the kernel the count in memory).
TEST(ReadTest, HugeCountIntoSmallBuffer) {
  char path[] = "/tmp/read_test_XXXXXX";
  int fd = mkstemp(path);
  ASSERT_THAT(fd, SyscallSucceeds());
  unlink(path);
  ASSERT_THAT(ftruncate(fd, 1LL << 40), SyscallSucceeds());
  OnePage page;
  for (int i = 0; i < 4; i++) {
    EXPECT_THAT(Pread(fd, page.base, 0x7ffff000, 0),
                SyscallSucceedsWithValue(OnePage::kPage));
    EXPECT_THAT(Read(fd, page.base, 0x7ffff000),
                SyscallSucceedsWithValue(OnePage::kPage));
    struct iovec iov[2] = {{page.base, OnePage::kPage},
                           {page.base + OnePage::kPage, 0x7ffff000}};
    EXPECT_THAT(Readv(fd, iov, 2), SyscallSucceedsWithValue(OnePage::kPage));
  }
  close(fd);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
