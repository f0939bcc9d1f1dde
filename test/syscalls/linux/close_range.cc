// close_range(2), and descriptor-level fcntl(2) and ioctl(2) requests.

#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

int CloseRange(unsigned first, unsigned last, unsigned flags) {
  return syscall(SYS_close_range, first, last, flags);
}

TEST(CloseRangeTest, ClosesRange) {
  int fds[4];
  for (int& fd : fds) {
    fd = open("/dev/null", O_RDONLY);
    ASSERT_THAT(fd, SyscallSucceeds());
  }
  ASSERT_THAT(CloseRange(fds[1], fds[2], 0), SyscallSucceeds());
  EXPECT_THAT(fcntl(fds[0], F_GETFD), SyscallSucceeds());
  EXPECT_THAT(fcntl(fds[1], F_GETFD), SyscallFailsWithErrno(EBADF));
  EXPECT_THAT(fcntl(fds[2], F_GETFD), SyscallFailsWithErrno(EBADF));
  EXPECT_THAT(fcntl(fds[3], F_GETFD), SyscallSucceeds());
  close(fds[0]);
  close(fds[3]);
}

TEST(CloseRangeTest, Cloexec) {
  int fd = open("/dev/null", O_RDONLY);
  ASSERT_THAT(fd, SyscallSucceeds());
  ASSERT_THAT(CloseRange(fd, ~0u, CLOSE_RANGE_CLOEXEC), SyscallSucceeds());
  EXPECT_THAT(fcntl(fd, F_GETFD), SyscallSucceedsWithValue(FD_CLOEXEC));
  close(fd);
}

TEST(CloseRangeTest, Errors) {
  EXPECT_THAT(CloseRange(5, 4, 0), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(CloseRange(5, 6, 0x100), SyscallFailsWithErrno(EINVAL));
  // Closing nothing is fine.
  EXPECT_THAT(CloseRange(100000, 100001, 0), SyscallSucceeds());
}

TEST(FdControlTest, IoctlCloexecAndNonblock) {
  int fd = open("/dev/null", O_RDONLY);
  ASSERT_THAT(fd, SyscallSucceeds());
  ASSERT_THAT(ioctl(fd, FIOCLEX), SyscallSucceeds());
  EXPECT_THAT(fcntl(fd, F_GETFD), SyscallSucceedsWithValue(FD_CLOEXEC));
  ASSERT_THAT(ioctl(fd, FIONCLEX), SyscallSucceeds());
  EXPECT_THAT(fcntl(fd, F_GETFD), SyscallSucceedsWithValue(0));
  int on = 1;
  ASSERT_THAT(ioctl(fd, FIONBIO, &on), SyscallSucceeds());
  EXPECT_TRUE(fcntl(fd, F_GETFL) & O_NONBLOCK);
  on = 0;
  ASSERT_THAT(ioctl(fd, FIONBIO, &on), SyscallSucceeds());
  EXPECT_FALSE(fcntl(fd, F_GETFL) & O_NONBLOCK);
  close(fd);
  int p = open("/dev/null", O_PATH);
  EXPECT_THAT(ioctl(p, FIOCLEX), SyscallFailsWithErrno(EBADF));
  close(p);
}

TEST(FdControlTest, DupfdQuery) {
  // F_DUPFD_QUERY (Linux 6.10).
  constexpr int kDupfdQuery = 1027;
  int a = open("/dev/null", O_RDONLY);
  int b = dup(a);
  int c = open("/dev/null", O_RDONLY);
  EXPECT_THAT(fcntl(a, kDupfdQuery, b), SyscallSucceedsWithValue(1));
  EXPECT_THAT(fcntl(a, kDupfdQuery, c), SyscallSucceedsWithValue(0));
  close(a);
  close(b);
  close(c);
}

TEST(FdControlTest, SetflChangesOnlySettableFlags) {
  int fd = open("/dev/null", O_RDONLY);
  ASSERT_THAT(fcntl(fd, F_SETFL, O_APPEND | O_NONBLOCK | O_RDWR), SyscallSucceeds());
  int fl = fcntl(fd, F_GETFL);
  EXPECT_EQ(fl & O_ACCMODE, O_RDONLY);
  EXPECT_TRUE(fl & O_APPEND);
  EXPECT_TRUE(fl & O_NONBLOCK);
  close(fd);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
