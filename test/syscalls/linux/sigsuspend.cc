// Waiting for a signal: rt_sigsuspend(2) and pause(2). Both return EINTR
// after a handler ran; sigsuspend runs the handler with its temporary mask
// and restores the caller's mask afterwards.

#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/signal_util.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

constexpr size_t kSigsetSize = 8;

volatile int handled;
volatile int handled_signo;
sigset_t mask_in_handler;

// async-signal-safe: records globals; sigprocmask is async-signal-safe.
void Handler(int signo) {
  handled++;
  handled_signo = signo;
  sigprocmask(SIG_BLOCK, nullptr, &mask_in_handler);
}

struct sigaction HandlerAction() {
  struct sigaction act = {};
  act.sa_handler = Handler;
  sigemptyset(&act.sa_mask);
  return act;
}

// Arms ITIMER_REAL once, `usec` microseconds from now.
void ArmRealTimer(long usec) {
  struct itimerval it = {};
  it.it_value.tv_usec = usec;
  ASSERT_THAT(setitimer(ITIMER_REAL, &it, nullptr), SyscallSucceeds());
}

class SigsuspendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    handled = 0;
    handled_signo = 0;
    ASSERT_EQ(pthread_sigmask(SIG_SETMASK, nullptr, &saved_), 0);
  }
  void TearDown() override {
    struct itimerval zero = {};
    setitimer(ITIMER_REAL, &zero, nullptr);
    EXPECT_EQ(pthread_sigmask(SIG_SETMASK, &saved_, nullptr), 0);
  }

 private:
  sigset_t saved_;
};

TEST_F(SigsuspendTest, PendingSignalRunsHandlerWithTemporaryMask) {
  ScopedSigaction action(SIGUSR1, HandlerAction());
  sigset_t usr1 = SignalSet({SIGUSR1});
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &usr1, nullptr), 0);
  ASSERT_THAT(raise(SIGUSR1), SyscallSucceeds());
  ASSERT_EQ(handled, 0);

  // The temporary mask blocks SIGUSR2 but not SIGUSR1.
  sigset_t temporary = SignalSet({SIGUSR2});
  EXPECT_THAT(sigsuspend(&temporary), SyscallFailsWithErrno(EINTR));
  EXPECT_EQ(handled, 1);
  EXPECT_EQ(handled_signo, SIGUSR1);
  // In the handler: the temporary mask plus the signal itself.
  EXPECT_TRUE(sigismember(&mask_in_handler, SIGUSR2));
  EXPECT_TRUE(sigismember(&mask_in_handler, SIGUSR1));

  // Afterwards: the caller's mask again.
  sigset_t now;
  ASSERT_EQ(pthread_sigmask(SIG_SETMASK, nullptr, &now), 0);
  EXPECT_TRUE(sigismember(&now, SIGUSR1));
  EXPECT_FALSE(sigismember(&now, SIGUSR2));
}

TEST_F(SigsuspendTest, WokenByTimer) {
  ScopedSigaction action(SIGALRM, HandlerAction());
  sigset_t alrm = SignalSet({SIGALRM});
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &alrm, nullptr), 0);
  ArmRealTimer(10000);
  sigset_t none;
  sigemptyset(&none);
  EXPECT_THAT(sigsuspend(&none), SyscallFailsWithErrno(EINTR));
  EXPECT_EQ(handled, 1);
  EXPECT_EQ(handled_signo, SIGALRM);
  sigset_t now;
  ASSERT_EQ(pthread_sigmask(SIG_SETMASK, nullptr, &now), 0);
  EXPECT_TRUE(sigismember(&now, SIGALRM));
}

TEST_F(SigsuspendTest, BlockedSignalsDoNotWake) {
  ScopedSigaction usr1(SIGUSR1, HandlerAction());
  ScopedSigaction alrm(SIGALRM, HandlerAction());
  sigset_t both = SignalSet({SIGUSR1, SIGALRM});
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &both, nullptr), 0);
  ASSERT_THAT(raise(SIGUSR1), SyscallSucceeds());
  ArmRealTimer(20000);
  // SIGUSR1 stays blocked during the wait: only SIGALRM ends it.
  sigset_t keep_usr1 = SignalSet({SIGUSR1});
  EXPECT_THAT(sigsuspend(&keep_usr1), SyscallFailsWithErrno(EINTR));
  EXPECT_EQ(handled, 1);
  EXPECT_EQ(handled_signo, SIGALRM);
  sigset_t pending;
  ASSERT_THAT(sigpending(&pending), SyscallSucceeds());
  EXPECT_TRUE(sigismember(&pending, SIGUSR1));
  // Unblocking delivers it.
  ASSERT_EQ(pthread_sigmask(SIG_UNBLOCK, &keep_usr1, nullptr), 0);
  EXPECT_EQ(handled, 2);
  EXPECT_EQ(handled_signo, SIGUSR1);
}

TEST_F(SigsuspendTest, BadSizeIsEinval) {
  sigset_t none;
  sigemptyset(&none);
  EXPECT_THAT(syscall(SYS_rt_sigsuspend, &none, kSigsetSize + 8),
              SyscallFailsWithErrno(EINVAL));
}

TEST_F(SigsuspendTest, BadPointerIsEfault) {
  EXPECT_THAT(syscall(SYS_rt_sigsuspend, reinterpret_cast<void*>(8),
                      kSigsetSize),
              SyscallFailsWithErrno(EFAULT));
}

TEST_F(SigsuspendTest, PauseReturnsAfterHandler) {
  ScopedSigaction action(SIGALRM, HandlerAction());
  sigset_t alrm = SignalSet({SIGALRM});
  ASSERT_EQ(pthread_sigmask(SIG_UNBLOCK, &alrm, nullptr), 0);
  ArmRealTimer(10000);
  EXPECT_THAT(pause(), SyscallFailsWithErrno(EINTR));
  EXPECT_EQ(handled, 1);
}

TEST_F(SigsuspendTest, PauseIgnoresIgnoredSignals) {
  // An ignored SIGALRM is dropped when sent; only the handled SIGUSR1 that
  // the second timer's handler raises ends the pause.
  struct sigaction ignore = {};
  ignore.sa_handler = SIG_IGN;
  ScopedSigaction ign(SIGUSR2, ignore);
  ScopedSigaction action(SIGALRM, HandlerAction());
  sigset_t set = SignalSet({SIGALRM, SIGUSR2});
  ASSERT_EQ(pthread_sigmask(SIG_UNBLOCK, &set, nullptr), 0);
  ASSERT_THAT(raise(SIGUSR2), SyscallSucceeds());
  ArmRealTimer(20000);
  EXPECT_THAT(pause(), SyscallFailsWithErrno(EINTR));
  EXPECT_EQ(handled, 1);
  EXPECT_EQ(handled_signo, SIGALRM);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
