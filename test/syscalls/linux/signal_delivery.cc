// Delivering a signal to a handler: tgkill(2), tkill(2), kill(2), the
// siginfo and context the handler gets, the mask while it runs, and return
// through rt_sigreturn.

#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/signal_util.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

pid_t Tid() { return syscall(SYS_gettid); }

long Tgkill(pid_t tgid, pid_t tid, int sig) {
  return syscall(SYS_tgkill, tgid, tid, sig);
}

// What the last handler invocation saw. Written by handlers, read after they
// return.
struct Seen {
  int count;
  int signo;
  siginfo_t info;
  bool had_info;
  sigset_t mask_in_handler;
  sigset_t uc_sigmask;
};
Seen seen;

void Reset() { memset(&seen, 0, sizeof(seen)); }

// async-signal-safe: copies what it is given; sigprocmask is
// async-signal-safe.
void InfoHandler(int signo, siginfo_t* info, void* ucontext) {
  seen.count++;
  seen.signo = signo;
  seen.info = *info;
  seen.had_info = true;
  sigprocmask(SIG_BLOCK, nullptr, &seen.mask_in_handler);
  seen.uc_sigmask = static_cast<ucontext_t*>(ucontext)->uc_sigmask;
}

void PlainHandler(int signo) {
  seen.count++;
  seen.signo = signo;
  sigprocmask(SIG_BLOCK, nullptr, &seen.mask_in_handler);
}

struct sigaction InfoAction(int flags = 0) {
  struct sigaction act = {};
  act.sa_sigaction = InfoHandler;
  act.sa_flags = SA_SIGINFO | flags;
  sigemptyset(&act.sa_mask);
  return act;
}

// Every test starts with SIGUSR1 and SIGUSR2 unblocked and ends with the mask
// it found.
class SignalDeliveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Reset();
    ASSERT_EQ(pthread_sigmask(SIG_UNBLOCK, nullptr, &saved_), 0);
    sigset_t usr = SignalSet({SIGUSR1, SIGUSR2});
    ASSERT_EQ(pthread_sigmask(SIG_UNBLOCK, &usr, nullptr), 0);
  }
  void TearDown() override {
    EXPECT_EQ(pthread_sigmask(SIG_SETMASK, &saved_, nullptr), 0);
  }

 private:
  sigset_t saved_;
};

TEST_F(SignalDeliveryTest, TgkillRunsHandlerWithSiginfo) {
  ScopedSigaction action(SIGUSR1, InfoAction());
  ASSERT_THAT(Tgkill(getpid(), Tid(), SIGUSR1), SyscallSucceedsWithValue(0));
  // The signal is delivered on the way out of tgkill, before it returns.
  ASSERT_EQ(seen.count, 1);
  EXPECT_EQ(seen.signo, SIGUSR1);
  EXPECT_EQ(seen.info.si_signo, SIGUSR1);
  EXPECT_EQ(seen.info.si_code, SI_TKILL);
  EXPECT_EQ(seen.info.si_pid, getpid());
  EXPECT_EQ(seen.info.si_uid, getuid());
  EXPECT_EQ(seen.info.si_errno, 0);
}

TEST_F(SignalDeliveryTest, TkillIsAlsoSiTkill) {
  ScopedSigaction action(SIGUSR1, InfoAction());
  ASSERT_THAT(syscall(SYS_tkill, Tid(), SIGUSR1), SyscallSucceedsWithValue(0));
  ASSERT_EQ(seen.count, 1);
  EXPECT_EQ(seen.info.si_code, SI_TKILL);
  EXPECT_EQ(seen.info.si_pid, getpid());
}

TEST_F(SignalDeliveryTest, KillIsSiUser) {
  ScopedSigaction action(SIGUSR2, InfoAction());
  ASSERT_THAT(syscall(SYS_kill, getpid(), SIGUSR2),
              SyscallSucceedsWithValue(0));
  ASSERT_EQ(seen.count, 1);
  EXPECT_EQ(seen.info.si_signo, SIGUSR2);
  EXPECT_EQ(seen.info.si_code, SI_USER);
  EXPECT_EQ(seen.info.si_pid, getpid());
  EXPECT_EQ(seen.info.si_uid, getuid());
}

// libc's raise() sends with tgkill.
TEST_F(SignalDeliveryTest, Raise) {
  ScopedSigaction action(SIGUSR1, InfoAction());
  ASSERT_EQ(raise(SIGUSR1), 0);
  ASSERT_EQ(seen.count, 1);
  EXPECT_EQ(seen.info.si_code, SI_TKILL);
}

// A handler without SA_SIGINFO gets the signal number, and execution carries
// on after it returns.
TEST_F(SignalDeliveryTest, PlainHandlerReturns) {
  struct sigaction act = {};
  act.sa_handler = PlainHandler;
  sigemptyset(&act.sa_mask);
  ScopedSigaction action(SIGUSR1, act);
  for (int i = 1; i <= 3; i++) {
    ASSERT_THAT(Tgkill(getpid(), Tid(), SIGUSR1), SyscallSucceeds());
    ASSERT_EQ(seen.count, i);
  }
  EXPECT_EQ(seen.signo, SIGUSR1);
}

// While a handler runs, its own signal and its sa_mask are blocked; after it
// returns the old mask is back. The context it gets holds the old mask.
TEST_F(SignalDeliveryTest, MaskDuringHandler) {
  struct sigaction act = InfoAction();
  sigaddset(&act.sa_mask, SIGUSR2);
  sigaddset(&act.sa_mask, SIGTERM);
  ScopedSigaction action(SIGUSR1, act);
  sigset_t before;
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, nullptr, &before), 0);

  ASSERT_THAT(Tgkill(getpid(), Tid(), SIGUSR1), SyscallSucceeds());
  ASSERT_EQ(seen.count, 1);
  EXPECT_TRUE(sigismember(&seen.mask_in_handler, SIGUSR1));
  EXPECT_TRUE(sigismember(&seen.mask_in_handler, SIGUSR2));
  EXPECT_TRUE(sigismember(&seen.mask_in_handler, SIGTERM));
  EXPECT_FALSE(sigismember(&seen.uc_sigmask, SIGUSR1));
  EXPECT_FALSE(sigismember(&seen.uc_sigmask, SIGUSR2));
  for (int sig = 1; sig < NSIG; sig++) {
    EXPECT_EQ(sigismember(&seen.uc_sigmask, sig), sigismember(&before, sig))
        << "uc_sigmask differs for signal " << sig;
  }

  sigset_t after;
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, nullptr, &after), 0);
  for (int sig = 1; sig < NSIG; sig++) {
    EXPECT_EQ(sigismember(&after, sig), sigismember(&before, sig))
        << "mask differs after the handler for signal " << sig;
  }
}

// SA_NODEFER leaves the signal unblocked in its own handler.
TEST_F(SignalDeliveryTest, Nodefer) {
  ScopedSigaction action(SIGUSR1, InfoAction(SA_NODEFER));
  ASSERT_THAT(Tgkill(getpid(), Tid(), SIGUSR1), SyscallSucceeds());
  ASSERT_EQ(seen.count, 1);
  EXPECT_FALSE(sigismember(&seen.mask_in_handler, SIGUSR1));
}

// SA_RESETHAND restores the default handler when the handler is entered
// (only sa_handler is reset: kernel/signal.c, get_signal).
TEST_F(SignalDeliveryTest, Resethand) {
  ScopedSigaction action(SIGUSR1, InfoAction(SA_RESETHAND));
  ASSERT_THAT(Tgkill(getpid(), Tid(), SIGUSR1), SyscallSucceeds());
  ASSERT_EQ(seen.count, 1);
  struct sigaction now;
  ASSERT_THAT(sigaction(SIGUSR1, nullptr, &now), SyscallSucceeds());
  EXPECT_EQ(now.sa_handler, SIG_DFL);
}

// Signal 0 checks that the target exists and sends nothing.
TEST_F(SignalDeliveryTest, SignalZeroSendsNothing) {
  ScopedSigaction action(SIGUSR1, InfoAction());
  EXPECT_THAT(Tgkill(getpid(), Tid(), 0), SyscallSucceedsWithValue(0));
  EXPECT_THAT(syscall(SYS_kill, getpid(), 0), SyscallSucceedsWithValue(0));
  EXPECT_EQ(seen.count, 0);
}

TEST_F(SignalDeliveryTest, InvalidSignalIsEinval) {
  EXPECT_THAT(Tgkill(getpid(), Tid(), 65), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(Tgkill(getpid(), Tid(), -1), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_kill, getpid(), 65), SyscallFailsWithErrno(EINVAL));
}

// tgkill refuses non-positive ids, and a thread that is not in the group.
TEST_F(SignalDeliveryTest, TgkillBadIds) {
  EXPECT_THAT(Tgkill(0, Tid(), SIGUSR1), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(Tgkill(getpid(), 0, SIGUSR1), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(Tgkill(getpid(), -5, SIGUSR1), SyscallFailsWithErrno(EINVAL));
  // pid_max is at most 2^22: this thread exists nowhere.
  EXPECT_THAT(Tgkill(getpid(), (1 << 22) + 1, 0), SyscallFailsWithErrno(ESRCH));
  EXPECT_THAT(syscall(SYS_tkill, 0, SIGUSR1), SyscallFailsWithErrno(EINVAL));
}

TEST_F(SignalDeliveryTest, KillNoSuchProcessIsEsrch) {
  EXPECT_THAT(syscall(SYS_kill, (1 << 22) + 1, 0),
              SyscallFailsWithErrno(ESRCH));
}

// A signal sent while its handler runs (and it is blocked) is delivered
// after the handler returns.
std::atomic<int> nested_depth;
std::atomic<int> nested_max;
std::atomic<int> nested_count;

void ResendingHandler(int) {
  const int depth = ++nested_depth;
  if (depth > nested_max) nested_max = depth;
  if (nested_count++ == 0) {
    syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGUSR1);
  }
  --nested_depth;
}

TEST_F(SignalDeliveryTest, ResentDuringHandlerRunsAfter) {
  nested_depth = nested_max = nested_count = 0;
  struct sigaction act = {};
  act.sa_handler = ResendingHandler;
  sigemptyset(&act.sa_mask);
  ScopedSigaction action(SIGUSR1, act);
  ASSERT_THAT(Tgkill(getpid(), Tid(), SIGUSR1), SyscallSucceeds());
  EXPECT_EQ(nested_count, 2);
  EXPECT_EQ(nested_max, 1) << "the handler was re-entered";
}

TEST(SignalDeathTest, DefaultActionTerminates) {
  EXPECT_EXIT(
      {
        signal(SIGUSR1, SIG_DFL);
        sigset_t usr1 = SignalSet({SIGUSR1});
        pthread_sigmask(SIG_UNBLOCK, &usr1, nullptr);
        raise(SIGUSR1);
      },
      ::testing::KilledBySignal(SIGUSR1), "");
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
