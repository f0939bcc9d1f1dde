// pipe(2), pipe2(2), FIFOs made by mknod(2), and pipe fcntls.

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/fs_util.h"
#include "test/util/signal_util.h"
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

TEST(PipeTest, DataFlowsInOrder) {
  Pipe p = MakePipe();
  ASSERT_THAT(write(p.w.get(), "abc", 3), SyscallSucceedsWithValue(3));
  ASSERT_THAT(write(p.w.get(), "def", 3), SyscallSucceedsWithValue(3));
  char buf[8] = {};
  EXPECT_THAT(read(p.r.get(), buf, sizeof(buf)), SyscallSucceedsWithValue(6));
  EXPECT_STREQ(buf, "abcdef");
}

TEST(PipeTest, Flags) {
  Pipe p = MakePipe(O_NONBLOCK);
  EXPECT_EQ(fcntl(p.r.get(), F_GETFL), O_RDONLY | O_NONBLOCK);
  EXPECT_EQ(fcntl(p.w.get(), F_GETFL), O_WRONLY | O_NONBLOCK);
  EXPECT_EQ(fcntl(p.r.get(), F_GETFD), FD_CLOEXEC);
  int fds[2];
  EXPECT_THAT(pipe2(fds, O_RDWR), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_pipe2, nullptr, 0), SyscallFailsWithErrno(EFAULT));
}

TEST(PipeTest, WrongEndIsEbadf) {
  Pipe p = MakePipe();
  char c;
  EXPECT_THAT(read(p.w.get(), &c, 1), SyscallFailsWithErrno(EBADF));
  EXPECT_THAT(write(p.r.get(), "x", 1), SyscallFailsWithErrno(EBADF));
  EXPECT_THAT(lseek(p.r.get(), 0, SEEK_SET), SyscallFailsWithErrno(ESPIPE));
  EXPECT_THAT(pwrite(p.w.get(), "x", 1, 0), SyscallFailsWithErrno(ESPIPE));
}

TEST(PipeTest, Stat) {
  Pipe p = MakePipe();
  struct stat a, b;
  ASSERT_THAT(fstat(p.r.get(), &a), SyscallSucceeds());
  ASSERT_THAT(fstat(p.w.get(), &b), SyscallSucceeds());
  EXPECT_TRUE(S_ISFIFO(a.st_mode));
  EXPECT_EQ(a.st_mode & 0777, 0600u);
  EXPECT_EQ(a.st_ino, b.st_ino);
  Pipe q = MakePipe();
  struct stat c;
  ASSERT_THAT(fstat(q.r.get(), &c), SyscallSucceeds());
  EXPECT_NE(a.st_ino, c.st_ino);
}

TEST(PipeTest, EofWhenWritersGone) {
  Pipe p = MakePipe();
  ASSERT_THAT(write(p.w.get(), "x", 1), SyscallSucceedsWithValue(1));
  p.w.reset();
  char buf[4];
  EXPECT_THAT(read(p.r.get(), buf, sizeof(buf)), SyscallSucceedsWithValue(1));
  EXPECT_THAT(read(p.r.get(), buf, sizeof(buf)), SyscallSucceedsWithValue(0));
  struct pollfd pfd = {p.r.get(), POLLIN, 0};
  (void)pfd;
}

TEST(PipeTest, DupKeepsWriterAlive) {
  Pipe p = MakePipe(O_NONBLOCK);
  FileDescriptor w2(dup(p.w.get()));
  p.w.reset();
  char c;
  EXPECT_THAT(read(p.r.get(), &c, 1), SyscallFailsWithErrno(EAGAIN));
  w2.reset();
  EXPECT_THAT(read(p.r.get(), &c, 1), SyscallSucceedsWithValue(0));
}

TEST(PipeTest, WriteWithoutReaderIsEpipeAndSigpipe) {
  Pipe p = MakePipe();
  p.r.reset();
  struct sigaction ign = {};
  ign.sa_handler = SIG_IGN;
  ScopedSigaction ignore(SIGPIPE, ign);
  EXPECT_THAT(write(p.w.get(), "x", 1), SyscallFailsWithErrno(EPIPE));
  // With SIGPIPE blocked, the signal is left pending.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  ScopedSignalMask mask(SIG_BLOCK, set);
  {
    struct sigaction dfl = {};
    dfl.sa_handler = SIG_DFL;
    ScopedSigaction deflt(SIGPIPE, dfl);
    EXPECT_THAT(write(p.w.get(), "x", 1), SyscallFailsWithErrno(EPIPE));
    sigset_t pending;
    ASSERT_THAT(sigpending(&pending), SyscallSucceeds());
    EXPECT_TRUE(sigismember(&pending, SIGPIPE));
  }
  // Ignoring it again (as deflt's end does) discards the pending signal
  // before the mask is lifted.
}

TEST(PipeTest, CapacityAndNonblockingWrites) {
  Pipe p = MakePipe(O_NONBLOCK);
  EXPECT_THAT(fcntl(p.w.get(), F_GETPIPE_SZ), SyscallSucceedsWithValue(65536));
  std::vector<char> big(100000, 'x');
  // A large non-blocking write takes what fits.
  EXPECT_THAT(write(p.w.get(), big.data(), big.size()),
              SyscallSucceedsWithValue(65536));
  EXPECT_THAT(write(p.w.get(), big.data(), 1), SyscallFailsWithErrno(EAGAIN));
  int n = 0;
  ASSERT_THAT(ioctl(p.r.get(), FIONREAD, &n), SyscallSucceeds());
  EXPECT_EQ(n, 65536);
  // The pipe holds pages: reading part of the first frees no room.
  ASSERT_THAT(read(p.r.get(), big.data(), 100), SyscallSucceedsWithValue(100));
  EXPECT_THAT(write(p.w.get(), big.data(), 100), SyscallFailsWithErrno(EAGAIN));
  ASSERT_THAT(read(p.r.get(), big.data(), 4096), SyscallSucceedsWithValue(4096));
  EXPECT_THAT(write(p.w.get(), big.data(), 4096), SyscallSucceedsWithValue(4096));
}

TEST(PipeTest, SmallWritesShareAPage) {
  Pipe p = MakePipe(O_NONBLOCK);
  ASSERT_THAT(fcntl(p.w.get(), F_SETPIPE_SZ, 4096), SyscallSucceeds());
  for (int i = 0; i < 40; i++) {
    ASSERT_THAT(write(p.w.get(), "0123456789", 10), SyscallSucceedsWithValue(10));
  }
  int n = 0;
  ASSERT_THAT(ioctl(p.r.get(), FIONREAD, &n), SyscallSucceeds());
  EXPECT_EQ(n, 400);
  // A write that does not fit the rest of the page needs another page.
  std::vector<char> big(4000, 'x');
  EXPECT_THAT(write(p.w.get(), big.data(), big.size()),
              SyscallFailsWithErrno(EAGAIN));
}

TEST(PipeTest, SetPipeSize) {
  Pipe p = MakePipe(O_NONBLOCK);
  EXPECT_THAT(fcntl(p.w.get(), F_SETPIPE_SZ, 5000), SyscallSucceedsWithValue(8192));
  EXPECT_THAT(fcntl(p.r.get(), F_GETPIPE_SZ), SyscallSucceedsWithValue(8192));
  EXPECT_THAT(fcntl(p.w.get(), F_SETPIPE_SZ, 1), SyscallSucceedsWithValue(4096));
  std::vector<char> data(4096, 'y');
  ASSERT_THAT(write(p.w.get(), data.data(), data.size()),
              SyscallSucceedsWithValue(4096));
  EXPECT_THAT(write(p.w.get(), "z", 1), SyscallFailsWithErrno(EAGAIN));
  // Shrinking below what it holds is refused.
  ASSERT_THAT(fcntl(p.w.get(), F_SETPIPE_SZ, 65536), SyscallSucceeds());
  ASSERT_THAT(write(p.w.get(), data.data(), data.size()), SyscallSucceeds());
  EXPECT_THAT(fcntl(p.w.get(), F_SETPIPE_SZ, 4096), SyscallFailsWithErrno(EBUSY));
  EXPECT_THAT(fcntl(p.w.get(), F_SETPIPE_SZ, -1), SyscallFailsWithErrno(EINVAL));
  FileDescriptor f(open("/", O_RDONLY | O_DIRECTORY));
  EXPECT_THAT(fcntl(f.get(), F_GETPIPE_SZ), SyscallFailsWithErrno(EBADF));
}

TEST(PipeTest, PollReadiness) {
  Pipe p = MakePipe();
  struct pollfd fds[2] = {{p.r.get(), POLLIN, 0}, {p.w.get(), POLLOUT, 0}};
  // Needs poll(2).
  SKIP_IF(IsRunningOnSandbox());
  ASSERT_THAT(poll(fds, 2, 0), SyscallSucceedsWithValue(1));
  EXPECT_EQ(fds[1].revents, POLLOUT);
  ASSERT_THAT(write(p.w.get(), "x", 1), SyscallSucceeds());
  ASSERT_THAT(poll(fds, 2, 0), SyscallSucceedsWithValue(2));
  EXPECT_EQ(fds[0].revents, POLLIN);
}

class FifoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    path_ = dir_.Join("fifo");
    ASSERT_THAT(mkfifo(path_.c_str(), 0644), SyscallSucceeds());
  }
  TempDir dir_;
  std::string path_;
};

TEST_F(FifoTest, IsAFifo) {
  struct stat st;
  ASSERT_THAT(stat(path_.c_str(), &st), SyscallSucceeds());
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0644u & ~0022u);
  EXPECT_THAT(mkfifo(path_.c_str(), 0644), SyscallFailsWithErrno(EEXIST));
}

TEST_F(FifoTest, ReadWriteOpenDoesNotBlock) {
  FileDescriptor rw(open(path_.c_str(), O_RDWR));
  ASSERT_THAT(rw.get(), SyscallSucceeds());
  ASSERT_THAT(write(rw.get(), "hi", 2), SyscallSucceedsWithValue(2));
  char buf[4] = {};
  EXPECT_THAT(read(rw.get(), buf, sizeof(buf)), SyscallSucceedsWithValue(2));
  EXPECT_STREQ(buf, "hi");
}

TEST_F(FifoTest, NonblockingOpens) {
  // A reader need not wait; a writer without readers cannot open.
  EXPECT_THAT(open(path_.c_str(), O_WRONLY | O_NONBLOCK),
              SyscallFailsWithErrno(ENXIO));
  FileDescriptor r(open(path_.c_str(), O_RDONLY | O_NONBLOCK));
  ASSERT_THAT(r.get(), SyscallSucceeds());
  char c;
  // No writer has come yet: end of file.
  EXPECT_THAT(read(r.get(), &c, 1), SyscallSucceedsWithValue(0));
  FileDescriptor w(open(path_.c_str(), O_WRONLY | O_NONBLOCK));
  ASSERT_THAT(w.get(), SyscallSucceeds());
  EXPECT_THAT(read(r.get(), &c, 1), SyscallFailsWithErrno(EAGAIN));
  ASSERT_THAT(write(w.get(), "z", 1), SyscallSucceedsWithValue(1));
  EXPECT_THAT(read(r.get(), &c, 1), SyscallSucceedsWithValue(1));
  EXPECT_EQ(c, 'z');
  // The FIFO's stat is the inode's, not a pipe's.
  struct stat a, b;
  ASSERT_THAT(fstat(r.get(), &a), SyscallSucceeds());
  ASSERT_THAT(stat(path_.c_str(), &b), SyscallSucceeds());
  EXPECT_EQ(a.st_ino, b.st_ino);
}

TEST_F(FifoTest, DataDoesNotOutliveLastClose) {
  {
    FileDescriptor rw(open(path_.c_str(), O_RDWR));
    ASSERT_THAT(write(rw.get(), "gone", 4), SyscallSucceedsWithValue(4));
  }
  FileDescriptor rw(open(path_.c_str(), O_RDWR | O_NONBLOCK));
  char c;
  EXPECT_THAT(read(rw.get(), &c, 1), SyscallFailsWithErrno(EAGAIN));
}

TEST_F(FifoTest, UnlinkedFifoStillWorks) {
  FileDescriptor rw(open(path_.c_str(), O_RDWR));
  ASSERT_THAT(unlink(path_.c_str()), SyscallSucceeds());
  ASSERT_THAT(write(rw.get(), "k", 1), SyscallSucceedsWithValue(1));
  char c;
  EXPECT_THAT(read(rw.get(), &c, 1), SyscallSucceedsWithValue(1));
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
