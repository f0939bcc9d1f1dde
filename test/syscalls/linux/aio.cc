// Linux native asynchronous I/O: io_setup(2), io_submit(2),
// io_getevents(2), io_cancel(2), io_destroy(2).

#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

// The head of the ring io_setup maps (struct aio_ring).
struct Ring {
  unsigned id, nr, head, tail, magic, compat, incompat, header_length;
};
constexpr unsigned kRingMagic = 0xa10a10a1;

class AioTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_THAT(syscall(SYS_io_setup, 8, &ctx_), SyscallSucceeds());
    char path[] = "/var/tmp/aio_test_XXXXXX";
    fd_ = mkstemp(path);
    ASSERT_THAT(fd_, SyscallSucceeds());
    unlink(path);
    ASSERT_THAT(write(fd_, "0123456789abcdef", 16), SyscallSucceedsWithValue(16));
  }
  void TearDown() override {
    if (ctx_) syscall(SYS_io_destroy, ctx_);
    close(fd_);
  }
  long Submit(struct iocb* cb) {
    struct iocb* cbs[1] = {cb};
    return syscall(SYS_io_submit, ctx_, 1, cbs);
  }
  long GetEvents(long min_nr, long nr, struct io_event* ev,
                 struct timespec* ts) {
    return syscall(SYS_io_getevents, ctx_, min_nr, nr, ev, ts);
  }
  struct iocb Iocb(int op, void* buf, size_t n, off_t off) {
    struct iocb cb;
    memset(&cb, 0, sizeof(cb));
    cb.aio_data = 0x1234;
    cb.aio_lio_opcode = op;
    cb.aio_fildes = fd_;
    cb.aio_buf = reinterpret_cast<uint64_t>(buf);
    cb.aio_nbytes = n;
    cb.aio_offset = off;
    return cb;
  }
  aio_context_t ctx_ = 0;
  int fd_ = -1;
};

TEST_F(AioTest, RingIsMappedWithItsHeader) {
  const Ring* ring = reinterpret_cast<const Ring*>(ctx_);
  EXPECT_EQ(ring->magic, kRingMagic);
  EXPECT_EQ(ring->header_length, sizeof(Ring));
  EXPECT_EQ(ring->head, ring->tail);
  EXPECT_GE(ring->nr, 8u);
  std::ifstream maps("/proc/self/maps");
  std::string line;
  bool found = false;
  while (std::getline(maps, line)) {
    if (line.find("/[aio]") != std::string::npos &&
        std::stoul(line, nullptr, 16) == ctx_) {
      found = true;
    }
  }
  EXPECT_TRUE(found);
}

TEST_F(AioTest, ReadCompletesWithItsEvent) {
  char buf[8] = {};
  struct iocb cb = Iocb(IOCB_CMD_PREAD, buf, 4, 10);
  ASSERT_THAT(Submit(&cb), SyscallSucceedsWithValue(1));
  struct io_event ev[2];
  ASSERT_THAT(GetEvents(1, 2, ev, nullptr), SyscallSucceedsWithValue(1));
  EXPECT_EQ(ev[0].data, 0x1234u);
  EXPECT_EQ(ev[0].obj, reinterpret_cast<uint64_t>(&cb));
  EXPECT_EQ(ev[0].res, 4);
  EXPECT_EQ(std::string(buf, 4), "abcd");
  const Ring* ring = reinterpret_cast<const Ring*>(ctx_);
  EXPECT_EQ(ring->head, ring->tail);
}

TEST_F(AioTest, WriteAndVectors) {
  struct iocb w = Iocb(IOCB_CMD_PWRITE, const_cast<char*>("XY"), 2, 3);
  ASSERT_THAT(Submit(&w), SyscallSucceedsWithValue(1));
  char a[3], b[4];
  struct iovec iov[2] = {{a, 3}, {b, 4}};
  struct iocb r = Iocb(IOCB_CMD_PREADV, iov, 2, 0);
  ASSERT_THAT(Submit(&r), SyscallSucceedsWithValue(1));
  struct io_event ev[2];
  ASSERT_THAT(GetEvents(2, 2, ev, nullptr), SyscallSucceedsWithValue(2));
  EXPECT_EQ(ev[0].res, 2);
  EXPECT_EQ(ev[1].res, 7);
  EXPECT_EQ(std::string(a, 3), "012");
  EXPECT_EQ(std::string(b, 4), "XY56");
}

TEST_F(AioTest, ReadyEventsAreSeenInTheRing) {
  char buf[4];
  struct iocb cb = Iocb(IOCB_CMD_PREAD, buf, 4, 0);
  ASSERT_THAT(Submit(&cb), SyscallSucceedsWithValue(1));
  const Ring* ring = reinterpret_cast<const Ring*>(ctx_);
  // libaio looks here before it calls io_getevents with a zero timeout.
  EXPECT_EQ((ring->tail - ring->head + ring->nr) % ring->nr, 1u);
  const struct io_event* events =
      reinterpret_cast<const struct io_event*>(ring + 1);
  EXPECT_EQ(events[ring->head].obj, reinterpret_cast<uint64_t>(&cb));
  struct io_event ev;
  struct timespec zero = {0, 0};
  ASSERT_THAT(GetEvents(0, 1, &ev, &zero), SyscallSucceedsWithValue(1));
  EXPECT_EQ(ring->head, ring->tail);
}

TEST_F(AioTest, EventfdIsSignalled) {
  int efd = eventfd(0, 0);
  ASSERT_THAT(efd, SyscallSucceeds());
  char buf[4];
  struct iocb cb = Iocb(IOCB_CMD_PREAD, buf, 4, 0);
  cb.aio_flags = IOCB_FLAG_RESFD;
  cb.aio_resfd = efd;
  ASSERT_THAT(Submit(&cb), SyscallSucceedsWithValue(1));
  uint64_t n = 0;
  ASSERT_THAT(read(efd, &n, 8), SyscallSucceedsWithValue(8));
  EXPECT_EQ(n, 1u);
  // Not an eventfd.
  cb.aio_resfd = fd_;
  EXPECT_THAT(Submit(&cb), SyscallFailsWithErrno(EINVAL));
  close(efd);
}

TEST_F(AioTest, GetEventsTimesOut) {
  struct io_event ev;
  struct timespec ts = {0, 10 * 1000 * 1000};
  EXPECT_THAT(GetEvents(1, 1, &ev, &ts), SyscallSucceedsWithValue(0));
  EXPECT_THAT(GetEvents(2, 1, &ev, &ts), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(GetEvents(-1, 1, &ev, &ts), SyscallFailsWithErrno(EINVAL));
}

TEST_F(AioTest, SubmitChecks) {
  char buf[4];
  struct iocb cb = Iocb(99, buf, 4, 0);
  EXPECT_THAT(Submit(&cb), SyscallFailsWithErrno(EINVAL));
  // Commands Linux dropped.
  cb = Iocb(IOCB_CMD_NOOP, buf, 4, 0);
  EXPECT_THAT(Submit(&cb), SyscallFailsWithErrno(EINVAL));
  cb = Iocb(IOCB_CMD_PREAD, buf, 4, 0);
  cb.aio_reserved2 = 1;
  EXPECT_THAT(Submit(&cb), SyscallFailsWithErrno(EINVAL));
  cb = Iocb(IOCB_CMD_PREAD, buf, 4, -1);
  EXPECT_THAT(Submit(&cb), SyscallFailsWithErrno(EINVAL));
  cb = Iocb(IOCB_CMD_PREAD, buf, 4, 0);
  cb.aio_fildes = 999;
  EXPECT_THAT(Submit(&cb), SyscallFailsWithErrno(EBADF));
  // fsync takes no buffer.
  cb = Iocb(IOCB_CMD_FSYNC, buf, 4, 0);
  EXPECT_THAT(Submit(&cb), SyscallFailsWithErrno(EINVAL));
  cb = Iocb(IOCB_CMD_FSYNC, nullptr, 0, 0);
  EXPECT_THAT(Submit(&cb), SyscallSucceedsWithValue(1));
  struct io_event ev;
  ASSERT_THAT(GetEvents(1, 1, &ev, nullptr), SyscallSucceedsWithValue(1));
  EXPECT_EQ(ev.res, 0);
  // A bad pointer in the array.
  struct iocb* bad[1] = {reinterpret_cast<struct iocb*>(8)};
  EXPECT_THAT(syscall(SYS_io_submit, ctx_, 1, bad), SyscallFailsWithErrno(EFAULT));
  EXPECT_THAT(syscall(SYS_io_submit, ctx_, -1L, bad), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_io_submit, ctx_, 0, bad), SyscallSucceedsWithValue(0));
}

TEST_F(AioTest, ErrorsOfTheOperationGoInTheEvent) {
  int ro = open("/dev/zero", O_RDONLY);
  ASSERT_THAT(ro, SyscallSucceeds());
  char buf[4];
  struct iocb cb = Iocb(IOCB_CMD_PWRITE, buf, 4, 0);
  cb.aio_fildes = ro;
  // Checked at submission: the descriptor is not open for writing.
  EXPECT_THAT(Submit(&cb), SyscallFailsWithErrno(EBADF));
  // A bad buffer fails the operation, not the submission.
  cb = Iocb(IOCB_CMD_PREAD, reinterpret_cast<void*>(8), 4, 0);
  ASSERT_THAT(Submit(&cb), SyscallSucceedsWithValue(1));
  struct io_event ev;
  ASSERT_THAT(GetEvents(1, 1, &ev, nullptr), SyscallSucceedsWithValue(1));
  EXPECT_EQ(ev.res, -EFAULT);
  close(ro);
}

TEST_F(AioTest, CancelOfACompletedRequest) {
  char buf[4];
  struct iocb cb = Iocb(IOCB_CMD_PREAD, buf, 4, 0);
  ASSERT_THAT(Submit(&cb), SyscallSucceedsWithValue(1));
  struct io_event ev;
  EXPECT_THAT(syscall(SYS_io_cancel, ctx_, &cb, &ev), SyscallFailsWithErrno(EINVAL));
}

TEST_F(AioTest, Destroy) {
  ASSERT_THAT(syscall(SYS_io_destroy, ctx_), SyscallSucceeds());
  EXPECT_THAT(syscall(SYS_io_destroy, ctx_), SyscallFailsWithErrno(EINVAL));
  char buf[4];
  struct iocb cb = Iocb(IOCB_CMD_PREAD, buf, 4, 0);
  EXPECT_THAT(Submit(&cb), SyscallFailsWithErrno(EINVAL));
  ctx_ = 0;
}

TEST(AioSetupTest, Checks) {
  aio_context_t ctx = 5;
  EXPECT_THAT(syscall(SYS_io_setup, 4, &ctx), SyscallFailsWithErrno(EINVAL));
  ctx = 0;
  EXPECT_THAT(syscall(SYS_io_setup, 0, &ctx), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_io_setup, -1, &ctx), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_io_setup, 1 << 20, &ctx), SyscallFailsWithErrno(EAGAIN));
  EXPECT_THAT(syscall(SYS_io_setup, 4, nullptr), SyscallFailsWithErrno(EFAULT));
  EXPECT_THAT(syscall(SYS_io_destroy, 0), SyscallFailsWithErrno(EINVAL));
}

TEST(AioSetupTest, ContextBelongsToItsAddressSpace) {
  aio_context_t ctx = 0;
  ASSERT_THAT(syscall(SYS_io_setup, 4, &ctx), SyscallSucceeds());
  pid_t pid = fork();
  ASSERT_THAT(pid, SyscallSucceeds());
  if (pid == 0) {
    // The child's copy of the ring names no context of its own.
    _exit(syscall(SYS_io_destroy, ctx) == -1 && errno == EINVAL ? 0 : 1);
  }
  int status;
  ASSERT_THAT(waitpid(pid, &status, 0), SyscallSucceedsWithValue(pid));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_THAT(syscall(SYS_io_destroy, ctx), SyscallSucceeds());
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
