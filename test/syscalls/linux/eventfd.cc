// eventfd(2) and eventfd2(2): the counter, EFD_SEMAPHORE, EFD_NONBLOCK and
// EFD_CLOEXEC, the 8-byte transfer size and overflow (fs/eventfd.c).
//
// Tests that block and are woken by a second thread need clone(2) and are
// skipped in the sandbox until it has threads.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/signal_util.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

constexpr uint64_t kMax = 0xfffffffffffffffe;

FileDescriptor NewEventfd(unsigned int initval, int flags) {
  int fd = syscall(SYS_eventfd2, initval, flags);
  EXPECT_THAT(fd, SyscallSucceeds());
  return FileDescriptor(fd);
}

long Write64(int fd, uint64_t v) { return write(fd, &v, sizeof(v)); }

long Read64(int fd, uint64_t* v) { return read(fd, v, sizeof(*v)); }

TEST(EventfdTest, InitialValueIsRead) {
  FileDescriptor fd = NewEventfd(5, EFD_NONBLOCK);
  uint64_t v = 0;
  ASSERT_THAT(Read64(fd.get(), &v), SyscallSucceedsWithValue(8));
  EXPECT_EQ(v, 5u);
  EXPECT_THAT(Read64(fd.get(), &v), SyscallFailsWithErrno(EAGAIN));
}

TEST(EventfdTest, WritesAccumulate) {
  FileDescriptor fd = NewEventfd(0, EFD_NONBLOCK);
  ASSERT_THAT(Write64(fd.get(), 3), SyscallSucceedsWithValue(8));
  ASSERT_THAT(Write64(fd.get(), 4), SyscallSucceedsWithValue(8));
  uint64_t v = 0;
  ASSERT_THAT(Read64(fd.get(), &v), SyscallSucceedsWithValue(8));
  EXPECT_EQ(v, 7u);
}

TEST(EventfdTest, ZeroWriteLeavesCounterEmpty) {
  FileDescriptor fd = NewEventfd(0, EFD_NONBLOCK);
  ASSERT_THAT(Write64(fd.get(), 0), SyscallSucceedsWithValue(8));
  uint64_t v;
  EXPECT_THAT(Read64(fd.get(), &v), SyscallFailsWithErrno(EAGAIN));
}

TEST(EventfdTest, SemaphoreReadsOneAtATime) {
  FileDescriptor fd = NewEventfd(3, EFD_NONBLOCK | EFD_SEMAPHORE);
  uint64_t v = 0;
  for (int i = 0; i < 3; i++) {
    ASSERT_THAT(Read64(fd.get(), &v), SyscallSucceedsWithValue(8));
    EXPECT_EQ(v, 1u);
  }
  EXPECT_THAT(Read64(fd.get(), &v), SyscallFailsWithErrno(EAGAIN));
}

TEST(EventfdTest, ShortBuffersAreEinval) {
  FileDescriptor fd = NewEventfd(1, EFD_NONBLOCK);
  char buf[7] = {};
  EXPECT_THAT(read(fd.get(), buf, sizeof(buf)), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(write(fd.get(), buf, sizeof(buf)),
              SyscallFailsWithErrno(EINVAL));
}

// Even an empty transfer is one the file refuses: read(2) and write(2)
// leave a zero count to the file (vfs_read has no shortcut).
TEST(EventfdTest, ZeroLengthIsEinval) {
  // Needs the read and write paths to pass zero counts to the file; they
  // return 0 before the file sees them.
  SKIP_IF(IsRunningOnSandbox());
  FileDescriptor fd = NewEventfd(1, EFD_NONBLOCK);
  char buf[8];
  EXPECT_THAT(read(fd.get(), buf, 0), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(write(fd.get(), buf, 0), SyscallFailsWithErrno(EINVAL));
}

// A larger buffer reads exactly eight bytes; a write must be exactly eight
// bytes (Linux 6.x eventfd_write).
TEST(EventfdTest, LongBuffers) {
  FileDescriptor fd = NewEventfd(0, EFD_NONBLOCK);
  uint64_t in[2] = {9, 1234};
  EXPECT_THAT(write(fd.get(), in, sizeof(in)), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(write(fd.get(), in, 9), SyscallFailsWithErrno(EINVAL));
  ASSERT_THAT(write(fd.get(), in, 8), SyscallSucceedsWithValue(8));
  uint64_t out[2] = {0, 77};
  ASSERT_THAT(read(fd.get(), out, sizeof(out)), SyscallSucceedsWithValue(8));
  EXPECT_EQ(out[0], 9u);
  EXPECT_EQ(out[1], 77u);
}

TEST(EventfdTest, VectoredIo) {
  FileDescriptor fd = NewEventfd(0, EFD_NONBLOCK);
  uint64_t v = 11;
  struct iovec iov = {&v, sizeof(v)};
  ASSERT_THAT(writev(fd.get(), &iov, 1), SyscallSucceedsWithValue(8));
  v = 0;
  ASSERT_THAT(readv(fd.get(), &iov, 1), SyscallSucceedsWithValue(8));
  EXPECT_EQ(v, 11u);
}

TEST(EventfdTest, WritingAllOnesIsEinval) {
  FileDescriptor fd = NewEventfd(0, EFD_NONBLOCK);
  EXPECT_THAT(Write64(fd.get(), ~uint64_t{0}), SyscallFailsWithErrno(EINVAL));
}

// The counter holds at most 0xfffffffffffffffe; a write that would pass it
// fails with EAGAIN when non-blocking.
TEST(EventfdTest, OverflowIsEagain) {
  FileDescriptor fd = NewEventfd(0, EFD_NONBLOCK);
  ASSERT_THAT(Write64(fd.get(), kMax), SyscallSucceedsWithValue(8));
  EXPECT_THAT(Write64(fd.get(), 1), SyscallFailsWithErrno(EAGAIN));
  // A zero write still succeeds: it does not overflow.
  EXPECT_THAT(Write64(fd.get(), 0), SyscallSucceedsWithValue(8));
  uint64_t v = 0;
  ASSERT_THAT(Read64(fd.get(), &v), SyscallSucceedsWithValue(8));
  EXPECT_EQ(v, kMax);
}

TEST(EventfdTest, BadFlagsAreEinval) {
  EXPECT_THAT(syscall(SYS_eventfd2, 0, 0x10), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_eventfd2, 0, O_APPEND),
              SyscallFailsWithErrno(EINVAL));
}

TEST(EventfdTest, StatusFlags) {
  FileDescriptor fd = NewEventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  EXPECT_THAT(fcntl(fd.get(), F_GETFL), SyscallSucceedsWithValue(
                                            O_RDWR | O_NONBLOCK));
  EXPECT_THAT(fcntl(fd.get(), F_GETFD), SyscallSucceedsWithValue(FD_CLOEXEC));

  FileDescriptor fd2 = NewEventfd(0, 0);
  EXPECT_THAT(fcntl(fd2.get(), F_GETFL), SyscallSucceedsWithValue(O_RDWR));
  EXPECT_THAT(fcntl(fd2.get(), F_GETFD), SyscallSucceedsWithValue(0));
}

// Clearing O_NONBLOCK with F_SETFL makes reads block; setting it makes them
// fail at once.
TEST(EventfdTest, SetflNonblock) {
  FileDescriptor fd = NewEventfd(0, 0);
  ASSERT_THAT(fcntl(fd.get(), F_SETFL, O_NONBLOCK), SyscallSucceeds());
  uint64_t v;
  EXPECT_THAT(Read64(fd.get(), &v), SyscallFailsWithErrno(EAGAIN));
}

// eventfd(2) is eventfd2 without flags.
TEST(EventfdTest, LegacyEventfd) {
  int fd = syscall(SYS_eventfd, 2);
  ASSERT_THAT(fd, SyscallSucceeds());
  FileDescriptor owned(fd);
  EXPECT_THAT(fcntl(fd, F_GETFL), SyscallSucceedsWithValue(O_RDWR));
  uint64_t v = 0;
  ASSERT_THAT(Read64(fd, &v), SyscallSucceedsWithValue(8));
  EXPECT_EQ(v, 2u);
}

TEST(EventfdTest, PositionalIoIsEspipe) {
  FileDescriptor fd = NewEventfd(1, EFD_NONBLOCK);
  uint64_t v = 0;
  EXPECT_THAT(pread(fd.get(), &v, sizeof(v), 0), SyscallFailsWithErrno(ESPIPE));
  EXPECT_THAT(pwrite(fd.get(), &v, sizeof(v), 0),
              SyscallFailsWithErrno(ESPIPE));
}

// The counter is taken before the copy out, so a bad buffer loses it.
TEST(EventfdTest, BadAddressIsEfault) {
  FileDescriptor fd = NewEventfd(1, EFD_NONBLOCK);
  EXPECT_THAT(syscall(SYS_write, fd.get(), nullptr, 8),
              SyscallFailsWithErrno(EFAULT));
  EXPECT_THAT(syscall(SYS_read, fd.get(), nullptr, 8),
              SyscallFailsWithErrno(EFAULT));
  uint64_t v = 0;
  EXPECT_THAT(Read64(fd.get(), &v), SyscallFailsWithErrno(EAGAIN));
}

// eventfds use noop_llseek: lseek succeeds and changes nothing.
TEST(EventfdTest, LseekIsNoop) {
  FileDescriptor fd = NewEventfd(1, EFD_NONBLOCK);
  EXPECT_THAT(lseek(fd.get(), 100, SEEK_SET), SyscallSucceedsWithValue(0));
  EXPECT_THAT(lseek(fd.get(), 0, SEEK_END), SyscallSucceedsWithValue(0));
}

// Readiness: readable while the counter is non-zero, writable while one more
// can be added.
TEST(EventfdTest, PollReadiness) {
  FileDescriptor fd = NewEventfd(0, EFD_NONBLOCK);
  struct pollfd pfd = {fd.get(), POLLIN | POLLOUT, 0};
  ASSERT_THAT(poll(&pfd, 1, 0), SyscallSucceedsWithValue(1));
  EXPECT_EQ(pfd.revents, POLLOUT);

  ASSERT_THAT(Write64(fd.get(), 1), SyscallSucceeds());
  ASSERT_THAT(poll(&pfd, 1, 0), SyscallSucceedsWithValue(1));
  EXPECT_EQ(pfd.revents, POLLIN | POLLOUT);

  ASSERT_THAT(Write64(fd.get(), kMax - 1), SyscallSucceeds());
  ASSERT_THAT(poll(&pfd, 1, 0), SyscallSucceedsWithValue(1));
  EXPECT_EQ(pfd.revents, POLLIN);
}

// eventfds, epoll instances and signalfds share one anonymous inode: mode
// 0600 without a file type (anon_inode_mkinode).
TEST(EventfdTest, FstatIsTheAnonymousInode) {
  FileDescriptor efd = NewEventfd(0, 0);
  int ep = syscall(SYS_epoll_create1, EPOLL_CLOEXEC);
  ASSERT_THAT(ep, SyscallSucceeds());
  FileDescriptor owned(ep);
  struct stat a, b;
  ASSERT_THAT(fstat(efd.get(), &a), SyscallSucceeds());
  ASSERT_THAT(fstat(ep, &b), SyscallSucceeds());
  EXPECT_EQ(a.st_mode, 0600u);
  EXPECT_EQ(a.st_nlink, 1u);
  EXPECT_EQ(a.st_size, 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(a.st_dev, b.st_dev);
  struct statfs sfs;
  ASSERT_THAT(fstatfs(efd.get(), &sfs), SyscallSucceeds());
  EXPECT_EQ(sfs.f_type, 0x09041934);
}

TEST(EventfdTest, ProcFdName) {
  FileDescriptor fd = NewEventfd(0, 0);
  char path[64], target[64] = {};
  snprintf(path, sizeof(path), "/proc/self/fd/%d", fd.get());
  ASSERT_THAT(readlink(path, target, sizeof(target) - 1), SyscallSucceeds());
  EXPECT_STREQ(target, "anon_inode:[eventfd]");
}

TEST(EventfdTest, BlockingReadWokenByWrite) {
  FileDescriptor fd = NewEventfd(0, 0);
  std::thread writer([&] {
    usleep(10000);
    EXPECT_THAT(Write64(fd.get(), 42), SyscallSucceeds());
  });
  uint64_t v = 0;
  EXPECT_THAT(Read64(fd.get(), &v), SyscallSucceedsWithValue(8));
  EXPECT_EQ(v, 42u);
  writer.join();
}

TEST(EventfdTest, BlockingWriteWokenByRead) {
  FileDescriptor fd = NewEventfd(0, 0);
  ASSERT_THAT(Write64(fd.get(), kMax), SyscallSucceeds());
  std::thread reader([&] {
    usleep(10000);
    uint64_t v = 0;
    EXPECT_THAT(Read64(fd.get(), &v), SyscallSucceedsWithValue(8));
    EXPECT_EQ(v, kMax);
  });
  EXPECT_THAT(Write64(fd.get(), 5), SyscallSucceedsWithValue(8));
  reader.join();
  uint64_t v = 0;
  ASSERT_THAT(Read64(fd.get(), &v), SyscallSucceedsWithValue(8));
  EXPECT_EQ(v, 5u);
}

void NoopHandler(int) {}

// A blocking read is interrupted by a signal; without SA_RESTART it fails
// with EINTR (eventfd_read returns -ERESTARTSYS).
TEST(EventfdTest, BlockingReadInterrupted) {
  struct sigaction sa = {};
  sa.sa_handler = NoopHandler;
  ScopedSigaction scoped(SIGALRM, sa);
  FileDescriptor fd = NewEventfd(0, 0);
  struct itimerval it = {{0, 0}, {0, 20000}};
  ASSERT_THAT(setitimer(ITIMER_REAL, &it, nullptr), SyscallSucceeds());
  uint64_t v;
  EXPECT_THAT(Read64(fd.get(), &v), SyscallFailsWithErrno(EINTR));
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
