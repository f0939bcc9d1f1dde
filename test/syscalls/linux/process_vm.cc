// process_vm_readv(2), process_vm_writev(2) (mm/process_vm_access.c) and
// membarrier(2) (kernel/sched/membarrier.c).

#include <linux/membarrier.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

const size_t kPage = sysconf(_SC_PAGESIZE);

ssize_t VmRead(pid_t pid, const struct iovec* local, unsigned long nlocal,
               const struct iovec* remote, unsigned long nremote,
               unsigned long flags = 0) {
  return syscall(SYS_process_vm_readv, pid, local, nlocal, remote, nremote,
                 flags);
}

ssize_t VmWrite(pid_t pid, const struct iovec* local, unsigned long nlocal,
                const struct iovec* remote, unsigned long nremote) {
  return syscall(SYS_process_vm_writev, pid, local, nlocal, remote, nremote, 0);
}

TEST(ProcessVmTest, ReadsAndWritesOwnMemory) {
  char src[] = "hello, world";
  char a[6] = {}, b[7] = {};
  struct iovec local[] = {{a, 5}, {b, 7}};
  struct iovec remote[] = {{src, 12}};
  EXPECT_THAT(VmRead(getpid(), local, 2, remote, 1),
              SyscallSucceedsWithValue(12));
  EXPECT_STREQ(a, "hello");
  EXPECT_EQ(std::string(b, 7), ", world");

  char dst[12] = {};
  struct iovec to[] = {{dst, 6}, {dst + 6, 6}};
  EXPECT_THAT(VmWrite(getpid(), local, 2, to, 2), SyscallSucceedsWithValue(12));
  EXPECT_EQ(std::string(dst, 12), "hello, world");
}

TEST(ProcessVmTest, StopsAtAnUnmappedRemotePage) {
  char* p = static_cast<char*>(mmap(nullptr, 2 * kPage, PROT_READ | PROT_WRITE,
                                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_THAT(p, SyscallSucceeds());
  ASSERT_THAT(munmap(p + kPage, kPage), SyscallSucceeds());
  memset(p, 'r', kPage);
  std::string buf(2 * kPage, '\0');
  struct iovec local = {buf.data(), buf.size()};
  struct iovec remote = {p + kPage - 100, 200};
  EXPECT_THAT(VmRead(getpid(), &local, 1, &remote, 1),
              SyscallSucceedsWithValue(100));
  EXPECT_EQ(buf.substr(0, 100), std::string(100, 'r'));
  // Nothing at all: EFAULT.
  struct iovec none = {p + kPage, 10};
  EXPECT_THAT(VmRead(getpid(), &local, 1, &none, 1),
              SyscallFailsWithErrno(EFAULT));
  munmap(p, kPage);
}

TEST(ProcessVmTest, Errors) {
  char x[4];
  struct iovec iov = {x, sizeof(x)};
  EXPECT_THAT(VmRead(getpid(), &iov, 1, &iov, 1, 1),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(VmRead(getpid(), &iov, 2000, &iov, 1),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(VmRead(0x3fffffff, &iov, 1, &iov, 1),
              SyscallFailsWithErrno(ESRCH));
  // Nothing to transfer: 0, before the pid is even looked at.
  struct iovec empty = {x, 0};
  EXPECT_THAT(VmRead(0x3fffffff, &empty, 1, &iov, 1),
              SyscallSucceedsWithValue(0));
}

TEST(ProcessVmTest, AnotherProcess) {
  static char value[16] = "parent value";
  pid_t pid = fork();
  if (pid < 0 && errno == ENOSYS) {
    GTEST_SKIP() << "fork(2) is not available";
  }
  ASSERT_THAT(pid, SyscallSucceeds());
  if (pid == 0) {
    strcpy(value, "child value");
    for (;;) sleep(1);
  }
  // The child's copy of `value` has diverged once it runs; retry until then.
  char buf[16] = {};
  struct iovec local = {buf, sizeof(buf)};
  struct iovec remote = {value, sizeof(value)};
  for (int i = 0; i < 1000 && strcmp(buf, "child value") != 0; i++) {
    ASSERT_THAT(VmRead(pid, &local, 1, &remote, 1),
                SyscallSucceedsWithValue(16));
    if (strcmp(buf, "child value") != 0) usleep(1000);
  }
  EXPECT_STREQ(buf, "child value");
  EXPECT_STREQ(value, "parent value");
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

int Membarrier(int cmd, unsigned flags = 0) {
  return static_cast<int>(syscall(SYS_membarrier, cmd, flags, 0));
}

TEST(MembarrierTest, Query) {
  int mask = Membarrier(MEMBARRIER_CMD_QUERY);
  ASSERT_THAT(mask, SyscallSucceeds());
  EXPECT_TRUE(mask & MEMBARRIER_CMD_PRIVATE_EXPEDITED);
  EXPECT_TRUE(mask & MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED);
  EXPECT_TRUE(mask & MEMBARRIER_CMD_GLOBAL);
}

TEST(MembarrierTest, PrivateExpeditedNeedsRegistration) {
  // Registration lasts for the life of the process, so only check the
  // order when nothing registered yet.
  if (Membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0) {
    EXPECT_EQ(errno, EPERM);
  }
  ASSERT_THAT(Membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED),
              SyscallSucceeds());
  EXPECT_THAT(Membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED), SyscallSucceeds());
#ifdef MEMBARRIER_CMD_GET_REGISTRATIONS
  int regs = Membarrier(MEMBARRIER_CMD_GET_REGISTRATIONS);
  if (regs >= 0) {
    EXPECT_TRUE(regs & MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED);
  }
#endif
}

TEST(MembarrierTest, Global) {
  EXPECT_THAT(Membarrier(MEMBARRIER_CMD_GLOBAL), SyscallSucceeds());
}

TEST(MembarrierTest, Errors) {
  EXPECT_THAT(Membarrier(1 << 20), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(Membarrier(MEMBARRIER_CMD_QUERY, 1), SyscallFailsWithErrno(EINVAL));
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
