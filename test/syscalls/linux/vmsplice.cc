// vmsplice(2): user memory into a pipe and out of one.

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
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

class VmspliceTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_THAT(pipe(fds_), SyscallSucceeds()); }
  void TearDown() override {
    close(fds_[0]);
    close(fds_[1]);
  }
  int fds_[2];
};

TEST_F(VmspliceTest, GathersIntoThePipe) {
  char a[] = "hello, ";
  char b[] = "world";
  struct iovec iov[2] = {{a, strlen(a)}, {b, strlen(b)}};
  ASSERT_THAT(vmsplice(fds_[1], iov, 2, 0), SyscallSucceedsWithValue(12));
  char buf[32] = {};
  ASSERT_THAT(read(fds_[0], buf, sizeof(buf)), SyscallSucceedsWithValue(12));
  EXPECT_STREQ(buf, "hello, world");
}

TEST_F(VmspliceTest, ScattersOutOfThePipe) {
  ASSERT_THAT(write(fds_[1], "abcdefgh", 8), SyscallSucceedsWithValue(8));
  char a[3] = {}, b[10] = {};
  struct iovec iov[2] = {{a, 3}, {b, 10}};
  ASSERT_THAT(vmsplice(fds_[0], iov, 2, 0), SyscallSucceedsWithValue(8));
  EXPECT_EQ(std::string(a, 3), "abc");
  EXPECT_EQ(std::string(b, 5), "defgh");
}

TEST_F(VmspliceTest, NotAPipeIsEbadf) {
  int fd = open("/dev/null", O_RDWR);
  ASSERT_THAT(fd, SyscallSucceeds());
  char c = 'x';
  struct iovec iov = {&c, 1};
  EXPECT_THAT(vmsplice(fd, &iov, 1, 0), SyscallFailsWithErrno(EBADF));
  close(fd);
  EXPECT_THAT(vmsplice(-1, &iov, 1, 0), SyscallFailsWithErrno(EBADF));
}

TEST_F(VmspliceTest, Checks) {
  char c = 'x';
  struct iovec iov = {&c, 1};
  EXPECT_THAT(vmsplice(fds_[1], &iov, 1, 0x100), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(vmsplice(fds_[1], &iov, 0, 0), SyscallSucceedsWithValue(0));
  EXPECT_THAT(vmsplice(fds_[1], nullptr, 1, 0), SyscallFailsWithErrno(EFAULT));
  EXPECT_THAT(vmsplice(fds_[1], &iov, 1025, 0), SyscallFailsWithErrno(EINVAL));
}

TEST_F(VmspliceTest, NonblockingFullPipeTakesWhatFits) {
  const int size = fcntl(fds_[1], F_GETPIPE_SZ);
  ASSERT_THAT(size, SyscallSucceeds());
  // Page-aligned: Linux gives each page of the buffer a pipe slot.
  char* big = static_cast<char*>(aligned_alloc(4096, size + 4096));
  ASSERT_NE(big, nullptr);
  memset(big, 'z', size + 4096);
  struct iovec iov = {big, static_cast<size_t>(size) + 4096};
  // Takes what fits and returns rather than waiting for the rest.
  ASSERT_THAT(vmsplice(fds_[1], &iov, 1, SPLICE_F_NONBLOCK),
              SyscallSucceedsWithValue(size));
  EXPECT_THAT(vmsplice(fds_[1], &iov, 1, SPLICE_F_NONBLOCK),
              SyscallFailsWithErrno(EAGAIN));
  // An empty pipe with a writer has nothing to give without blocking.
  std::vector<char> out(size);
  struct iovec in = {out.data(), out.size()};
  ASSERT_THAT(vmsplice(fds_[0], &in, 1, 0), SyscallSucceedsWithValue(size));
  EXPECT_THAT(vmsplice(fds_[0], &in, 1, SPLICE_F_NONBLOCK),
              SyscallFailsWithErrno(EAGAIN));
  free(big);
}

TEST_F(VmspliceTest, ReadEndAfterWritersCloseIsEof) {
  close(fds_[1]);
  fds_[1] = open("/dev/null", O_WRONLY);
  char c;
  struct iovec iov = {&c, 1};
  EXPECT_THAT(vmsplice(fds_[0], &iov, 1, 0), SyscallSucceedsWithValue(0));
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
