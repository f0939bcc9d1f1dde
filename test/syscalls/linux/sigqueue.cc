// Queueing signals with data: rt_sigqueueinfo(2) and rt_tgsigqueueinfo(2),
// and the rule that nobody but the kernel may send kernel si_codes to
// others.

#include <signal.h>
#include <errno.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <initializer_list>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/signal_util.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

// A pid that no process has (above the default pid_max of 4194304 is not
// allowed, so use the largest allowed one and hope nobody is there).
constexpr pid_t kNoSuchPid = 4194303;

pid_t Tid() { return syscall(SYS_gettid); }

siginfo_t QueueInfo(int code, int value) {
  siginfo_t info;
  memset(&info, 0, sizeof(info));
  info.si_signo = SIGUSR1;
  info.si_code = code;
  info.si_pid = getpid();
  info.si_uid = getuid();
  info.si_value.sival_int = value;
  return info;
}

// Takes the pending SIGUSR1 and returns its siginfo.
siginfo_t TakeUsr1() {
  sigset_t set = SignalSet({SIGUSR1});
  siginfo_t info = {};
  struct timespec zero = {};
  EXPECT_THAT(sigtimedwait(&set, &info, &zero), SyscallSucceeds());
  return info;
}

class SigqueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sigset_t set = SignalSet({SIGUSR1});
    ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &set, &saved_), 0);
  }
  void TearDown() override {
    sigset_t set = SignalSet({SIGUSR1});
    struct timespec zero = {};
    while (sigtimedwait(&set, nullptr, &zero) > 0) {
    }
    EXPECT_EQ(pthread_sigmask(SIG_SETMASK, &saved_, nullptr), 0);
  }

 private:
  sigset_t saved_;
};

TEST_F(SigqueueTest, SigqueueCarriesValue) {
  union sigval v;
  v.sival_int = 42;
  ASSERT_THAT(sigqueue(getpid(), SIGUSR1, v), SyscallSucceeds());
  siginfo_t info = TakeUsr1();
  EXPECT_EQ(info.si_signo, SIGUSR1);
  EXPECT_EQ(info.si_code, SI_QUEUE);
  EXPECT_EQ(info.si_pid, getpid());
  EXPECT_EQ(info.si_uid, getuid());
  EXPECT_EQ(info.si_value.sival_int, 42);
}

TEST_F(SigqueueTest, SignoIsTheArgument) {
  siginfo_t info = QueueInfo(SI_QUEUE, 7);
  info.si_signo = SIGUSR2;
  ASSERT_THAT(syscall(SYS_rt_sigqueueinfo, getpid(), SIGUSR1, &info),
              SyscallSucceeds());
  siginfo_t got = TakeUsr1();
  EXPECT_EQ(got.si_signo, SIGUSR1);
  EXPECT_EQ(got.si_value.sival_int, 7);
}

TEST_F(SigqueueTest, ArbitraryNegativeCodeIsKept) {
  siginfo_t info = QueueInfo(-60, 9);
  ASSERT_THAT(syscall(SYS_rt_sigqueueinfo, getpid(), SIGUSR1, &info),
              SyscallSucceeds());
  EXPECT_EQ(TakeUsr1().si_code, -60);
}

TEST_F(SigqueueTest, KernelCodesToSelfAreAllowed) {
  // The main thread's tid is the process id.
  siginfo_t info = QueueInfo(SI_USER, 0);
  EXPECT_THAT(syscall(SYS_rt_sigqueueinfo, getpid(), SIGUSR1, &info),
              SyscallSucceeds());
  EXPECT_EQ(TakeUsr1().si_code, SI_USER);
}

TEST_F(SigqueueTest, KernelCodesToOthersAreEperm) {
  // Checked before the target is even looked up.
  for (int code : std::initializer_list<int>{SI_USER, SI_KERNEL, SI_TKILL, 1}) {
    siginfo_t info = QueueInfo(code, 0);
    EXPECT_THAT(syscall(SYS_rt_sigqueueinfo, kNoSuchPid, SIGUSR1, &info),
                SyscallFailsWithErrno(EPERM))
        << "si_code " << code;
    EXPECT_THAT(
        syscall(SYS_rt_tgsigqueueinfo, getpid(), kNoSuchPid, SIGUSR1, &info),
        SyscallFailsWithErrno(EPERM))
        << "si_code " << code;
  }
}

TEST_F(SigqueueTest, NoSuchProcessIsEsrch) {
  siginfo_t info = QueueInfo(SI_QUEUE, 0);
  EXPECT_THAT(syscall(SYS_rt_sigqueueinfo, kNoSuchPid, SIGUSR1, &info),
              SyscallFailsWithErrno(ESRCH));
  EXPECT_THAT(
      syscall(SYS_rt_tgsigqueueinfo, getpid(), kNoSuchPid, SIGUSR1, &info),
      SyscallFailsWithErrno(ESRCH));
}

TEST_F(SigqueueTest, InvalidSignalIsEinval) {
  siginfo_t info = QueueInfo(SI_QUEUE, 0);
  EXPECT_THAT(syscall(SYS_rt_sigqueueinfo, getpid(), 65, &info),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_rt_sigqueueinfo, getpid(), -1, &info),
              SyscallFailsWithErrno(EINVAL));
}

TEST_F(SigqueueTest, SignalZeroChecksOnly) {
  siginfo_t info = QueueInfo(SI_QUEUE, 0);
  EXPECT_THAT(syscall(SYS_rt_sigqueueinfo, getpid(), 0, &info),
              SyscallSucceeds());
  sigset_t pending;
  ASSERT_THAT(sigpending(&pending), SyscallSucceeds());
  EXPECT_FALSE(sigismember(&pending, SIGUSR1));
}

TEST_F(SigqueueTest, BadInfoPointerIsEfault) {
  EXPECT_THAT(syscall(SYS_rt_sigqueueinfo, getpid(), SIGUSR1,
                      reinterpret_cast<void*>(8)),
              SyscallFailsWithErrno(EFAULT));
  EXPECT_THAT(syscall(SYS_rt_tgsigqueueinfo, getpid(), Tid(), SIGUSR1,
                      reinterpret_cast<void*>(8)),
              SyscallFailsWithErrno(EFAULT));
}

TEST_F(SigqueueTest, TgsigqueueinfoToThread) {
  siginfo_t info = QueueInfo(SI_QUEUE, 11);
  ASSERT_THAT(syscall(SYS_rt_tgsigqueueinfo, getpid(), Tid(), SIGUSR1, &info),
              SyscallSucceeds());
  siginfo_t got = TakeUsr1();
  EXPECT_EQ(got.si_code, SI_QUEUE);
  EXPECT_EQ(got.si_value.sival_int, 11);
}

TEST_F(SigqueueTest, TgsigqueueinfoBadIds) {
  siginfo_t info = QueueInfo(SI_QUEUE, 0);
  EXPECT_THAT(syscall(SYS_rt_tgsigqueueinfo, 0, Tid(), SIGUSR1, &info),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_rt_tgsigqueueinfo, getpid(), 0, SIGUSR1, &info),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_rt_tgsigqueueinfo, getpid(), -1, SIGUSR1, &info),
              SyscallFailsWithErrno(EINVAL));
  // A thread of another process (or none).
  EXPECT_THAT(
      syscall(SYS_rt_tgsigqueueinfo, kNoSuchPid, Tid(), SIGUSR1, &info),
      SyscallFailsWithErrno(ESRCH));
}

TEST_F(SigqueueTest, StandardSignalCoalescesButRealtimeQueues) {
  siginfo_t info = QueueInfo(SI_QUEUE, 1);
  ASSERT_THAT(syscall(SYS_rt_sigqueueinfo, getpid(), SIGUSR1, &info),
              SyscallSucceeds());
  info.si_value.sival_int = 2;
  ASSERT_THAT(syscall(SYS_rt_sigqueueinfo, getpid(), SIGUSR1, &info),
              SyscallSucceeds());
  // The first one is kept; the second coalesced into it.
  EXPECT_EQ(TakeUsr1().si_value.sival_int, 1);
  sigset_t set = SignalSet({SIGUSR1});
  struct timespec zero = {};
  EXPECT_THAT(sigtimedwait(&set, nullptr, &zero),
              SyscallFailsWithErrno(EAGAIN));
}

TEST_F(SigqueueTest, RlimitSigpendingLimitsRealtimeQueue) {
  struct rlimit old;
  ASSERT_THAT(getrlimit(RLIMIT_SIGPENDING, &old), SyscallSucceeds());
  struct rlimit small = {8, old.rlim_max};
  ASSERT_THAT(setrlimit(RLIMIT_SIGPENDING, &small), SyscallSucceeds());
  sigset_t rt = SignalSet({SIGRTMIN});
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &rt, nullptr), 0);
  // The limit counts every signal queued for this user, in any process,
  // so the first refusal may come early, but it comes.
  int queued = 0;
  int refused_errno = 0;
  for (int i = 0; i < 16; i++) {
    union sigval v;
    v.sival_int = i;
    if (sigqueue(getpid(), SIGRTMIN, v) != 0) {
      refused_errno = errno;
      break;
    }
    queued++;
  }
  EXPECT_EQ(refused_errno, EAGAIN);
  EXPECT_LE(queued, 8);
  // kill(2) of a standard signal is not limited.
  EXPECT_THAT(kill(getpid(), SIGUSR1), SyscallSucceeds());
  // Taking the queued signals gives the room back.
  struct timespec zero = {};
  for (int i = 0; i < queued; i++) {
    EXPECT_THAT(sigtimedwait(&rt, nullptr, &zero),
                SyscallSucceedsWithValue(SIGRTMIN));
  }
  union sigval v;
  v.sival_int = 0;
  EXPECT_THAT(sigqueue(getpid(), SIGRTMIN, v), SyscallSucceeds());
  EXPECT_THAT(sigtimedwait(&rt, nullptr, &zero), SyscallSucceedsWithValue(SIGRTMIN));
  ASSERT_THAT(setrlimit(RLIMIT_SIGPENDING, &old), SyscallSucceeds());
  ASSERT_EQ(pthread_sigmask(SIG_UNBLOCK, &rt, nullptr), 0);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
