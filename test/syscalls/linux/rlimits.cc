// getrlimit(2), setrlimit(2), prlimit64(2), and the limits Linux enforces:
// RLIMIT_NOFILE at descriptor allocation, RLIMIT_NPROC at clone,
// RLIMIT_FSIZE at write.

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <functional>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/multiprocess_util.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

// ScopedLimit sets a limit and restores it on destruction.
class ScopedLimit {
 public:
  ScopedLimit(int resource, rlim_t soft, rlim_t hard) : resource_(resource) {
    EXPECT_THAT(syscall(SYS_getrlimit, resource, &old_), SyscallSucceeds());
    struct rlimit rl = {soft, hard};
    EXPECT_THAT(syscall(SYS_setrlimit, resource, &rl), SyscallSucceeds());
  }
  ~ScopedLimit() { syscall(SYS_setrlimit, resource_, &old_); }

 private:
  int resource_;
  struct rlimit old_;
};

TEST(RlimitsTest, GetAndSetRoundTrip) {
  struct rlimit old;
  ASSERT_THAT(syscall(SYS_getrlimit, RLIMIT_CORE, &old), SyscallSucceeds());
  struct rlimit rl = {0, old.rlim_max};
  ASSERT_THAT(syscall(SYS_setrlimit, RLIMIT_CORE, &rl), SyscallSucceeds());
  struct rlimit got;
  ASSERT_THAT(syscall(SYS_getrlimit, RLIMIT_CORE, &got), SyscallSucceeds());
  EXPECT_EQ(got.rlim_cur, 0u);
  EXPECT_EQ(got.rlim_max, old.rlim_max);
  ASSERT_THAT(syscall(SYS_setrlimit, RLIMIT_CORE, &old), SyscallSucceeds());
}

TEST(RlimitsTest, Errors) {
  struct rlimit rl;
  EXPECT_THAT(syscall(SYS_getrlimit, 16, &rl), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_getrlimit, -1, &rl), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_getrlimit, RLIMIT_CORE, nullptr),
              SyscallFailsWithErrno(EFAULT));
  EXPECT_THAT(syscall(SYS_setrlimit, RLIMIT_CORE, nullptr),
              SyscallFailsWithErrno(EFAULT));
  ASSERT_THAT(syscall(SYS_getrlimit, RLIMIT_CORE, &rl), SyscallSucceeds());
  struct rlimit inverted = {rl.rlim_max == RLIM_INFINITY ? RLIM_INFINITY : rl.rlim_max + 1,
                            rl.rlim_max == RLIM_INFINITY ? 1 : rl.rlim_max};
  EXPECT_THAT(syscall(SYS_setrlimit, RLIMIT_CORE, &inverted),
              SyscallFailsWithErrno(EINVAL));
  // fs.nr_open caps RLIMIT_NOFILE.
  struct rlimit huge = {1u << 30, 1u << 30};
  EXPECT_THAT(syscall(SYS_setrlimit, RLIMIT_NOFILE, &huge),
              SyscallFailsWithErrno(EPERM));
}

TEST(RlimitsTest, RaisingTheHardLimitNeedsCapSysResource) {
  std::thread t([] {
    ASSERT_THAT(syscall(SYS_setresuid, 65534, 65534, 65534), SyscallSucceeds());
    struct rlimit rl;
    ASSERT_THAT(syscall(SYS_getrlimit, RLIMIT_NOFILE, &rl), SyscallSucceeds());
    struct rlimit up = {rl.rlim_cur, rl.rlim_max + 1};
    EXPECT_THAT(syscall(SYS_setrlimit, RLIMIT_NOFILE, &up),
                SyscallFailsWithErrno(EPERM));
    // Setting what is already there is always allowed.
    EXPECT_THAT(syscall(SYS_setrlimit, RLIMIT_NOFILE, &rl), SyscallSucceeds());
  });
  t.join();
}

TEST(RlimitsTest, Prlimit64) {
  struct rlimit old, got;
  ASSERT_THAT(syscall(SYS_prlimit64, 0, RLIMIT_CORE, nullptr, &old),
              SyscallSucceeds());
  ASSERT_THAT(syscall(SYS_getrlimit, RLIMIT_CORE, &got), SyscallSucceeds());
  EXPECT_EQ(old.rlim_cur, got.rlim_cur);
  struct rlimit rl = {0, old.rlim_max};
  struct rlimit before;
  ASSERT_THAT(syscall(SYS_prlimit64, getpid(), RLIMIT_CORE, &rl, &before),
              SyscallSucceeds());
  // The old value comes back.
  EXPECT_EQ(before.rlim_cur, old.rlim_cur);
  ASSERT_THAT(syscall(SYS_prlimit64, 0, RLIMIT_CORE, &old, nullptr),
              SyscallSucceeds());
  EXPECT_THAT(syscall(SYS_prlimit64, 0x3fffff0, RLIMIT_CORE, nullptr, &got),
              SyscallFailsWithErrno(ESRCH));
  EXPECT_THAT(syscall(SYS_prlimit64, 0, 99, nullptr, &got),
              SyscallFailsWithErrno(EINVAL));
}

TEST(RlimitsTest, PrlimitOfAChild) {
  HelperSpec spec;
  spec.action = "pause";
  const pid_t pid = SpawnHelper(spec);
  ASSERT_THAT(pid, SyscallSucceeds());
  struct rlimit rl = {0, 0};
  ASSERT_THAT(syscall(SYS_prlimit64, pid, RLIMIT_CORE, &rl, nullptr),
              SyscallSucceeds());
  struct rlimit got;
  ASSERT_THAT(syscall(SYS_prlimit64, pid, RLIMIT_CORE, nullptr, &got),
              SyscallSucceeds());
  EXPECT_EQ(got.rlim_max, 0u);
  kill(pid, SIGKILL);
  WaitForStatus(pid);
}

TEST(RlimitsTest, NofileBoundsNewDescriptors) {
  ScopedLimit limit(RLIMIT_NOFILE, 10, 1024);
  std::vector<int> fds;
  for (;;) {
    const int fd = dup(0);
    if (fd < 0) {
      EXPECT_EQ(errno, EMFILE);
      break;
    }
    EXPECT_LT(fd, 10);
    fds.push_back(fd);
  }
  EXPECT_THAT(fcntl(0, F_DUPFD, 10), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(dup2(0, 10), SyscallFailsWithErrno(EBADF));
  for (int fd : fds) close(fd);
}

TEST(RlimitsTest, NprocBoundsTaskCreationForNonRoot) {
  struct rlimit old;
  ASSERT_THAT(syscall(SYS_getrlimit, RLIMIT_NPROC, &old), SyscallSucceeds());
  std::thread t([&old] {
    // One task of this user exists: this thread.
    ASSERT_THAT(syscall(SYS_setresuid, 65534, 65534, 65534), SyscallSucceeds());
    struct rlimit one = {1, old.rlim_max};
    ASSERT_THAT(syscall(SYS_setrlimit, RLIMIT_NPROC, &one), SyscallSucceeds());
    EXPECT_THAT(VforkRun([]() -> int { return 0; }), SyscallFailsWithErrno(EAGAIN));
  });
  t.join();
  // The limit belongs to the process: put the soft limit back.
  ASSERT_THAT(syscall(SYS_setrlimit, RLIMIT_NPROC, &old), SyscallSucceeds());
}

TEST(RlimitsTest, FsizeRaisesSigxfsz) {
  char path[] = "/tmp/rlimits_fsize_XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_THAT(fd, SyscallSucceeds());
  unlink(path);
  struct sigaction sa = {};
  sa.sa_handler = SIG_IGN;
  struct sigaction old;
  ASSERT_THAT(sigaction(SIGXFSZ, &sa, &old), SyscallSucceeds());
  {
    ScopedLimit limit(RLIMIT_FSIZE, 4, RLIM_INFINITY);
    // A write crossing the limit is cut short; one starting at it fails.
    EXPECT_THAT(write(fd, "abcdef", 6), SyscallSucceedsWithValue(4));
    EXPECT_THAT(write(fd, "x", 1), SyscallFailsWithErrno(EFBIG));
  }
  sigaction(SIGXFSZ, &old, nullptr);
  close(fd);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
