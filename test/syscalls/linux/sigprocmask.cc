// rt_sigprocmask(2) and rt_sigpending(2), and what the mask does to
// delivery.

#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
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

constexpr size_t kSigsetSize = sizeof(uint64_t);

long RtSigprocmask(int how, const uint64_t* set, uint64_t* old,
                   size_t size = kSigsetSize) {
  return syscall(SYS_rt_sigprocmask, how, set, old, size);
}

long RtSigpending(uint64_t* set, size_t size = kSigsetSize) {
  return syscall(SYS_rt_sigpending, set, size);
}

uint64_t Bit(int sig) { return uint64_t{1} << (sig - 1); }

uint64_t CurrentMask() {
  uint64_t m = 0;
  EXPECT_THAT(RtSigprocmask(SIG_BLOCK, nullptr, &m), SyscallSucceeds());
  return m;
}

long SendToSelf(int sig) {
  return syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), sig);
}

// Each test starts and ends with the mask it found.
class SigprocmaskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_THAT(RtSigprocmask(SIG_BLOCK, nullptr, &saved_), SyscallSucceeds());
  }
  void TearDown() override {
    // Discard whatever a failed test left pending, so that unblocking it
    // with its default action cannot end the whole program.
    for (int sig : {SIGUSR1, SIGUSR2, SIGRTMIN + 2}) {
      struct sigaction ign = {}, old;
      ign.sa_handler = SIG_IGN;
      EXPECT_THAT(sigaction(sig, &ign, &old), SyscallSucceeds());
      EXPECT_THAT(sigaction(sig, &old, nullptr), SyscallSucceeds());
    }
    EXPECT_THAT(RtSigprocmask(SIG_SETMASK, &saved_, nullptr),
                SyscallSucceeds());
  }

 private:
  uint64_t saved_ = 0;
};

TEST_F(SigprocmaskTest, BlockUnblockSetmask) {
  const uint64_t start = CurrentMask();
  const uint64_t usr1 = Bit(SIGUSR1), usr2 = Bit(SIGUSR2);

  uint64_t old = 0;
  ASSERT_THAT(RtSigprocmask(SIG_BLOCK, &usr1, &old),
              SyscallSucceedsWithValue(0));
  EXPECT_EQ(old, start);
  EXPECT_EQ(CurrentMask(), start | usr1);

  ASSERT_THAT(RtSigprocmask(SIG_BLOCK, &usr2, &old), SyscallSucceeds());
  EXPECT_EQ(old, start | usr1);
  EXPECT_EQ(CurrentMask(), start | usr1 | usr2);

  ASSERT_THAT(RtSigprocmask(SIG_UNBLOCK, &usr1, &old), SyscallSucceeds());
  EXPECT_EQ(old, start | usr1 | usr2);
  EXPECT_EQ(CurrentMask(), (start | usr2) & ~usr1);

  const uint64_t exact = Bit(SIGTERM) | Bit(SIGRTMIN + 3);
  ASSERT_THAT(RtSigprocmask(SIG_SETMASK, &exact, &old), SyscallSucceeds());
  EXPECT_EQ(CurrentMask(), exact);
}

// SIGKILL and SIGSTOP are silently left out of any mask.
TEST_F(SigprocmaskTest, CannotBlockKillOrStop) {
  const uint64_t all = ~uint64_t{0};
  ASSERT_THAT(RtSigprocmask(SIG_SETMASK, &all, nullptr), SyscallSucceeds());
  EXPECT_EQ(CurrentMask(), all & ~(Bit(SIGKILL) | Bit(SIGSTOP)));

  const uint64_t none = 0;
  ASSERT_THAT(RtSigprocmask(SIG_SETMASK, &none, nullptr), SyscallSucceeds());
  const uint64_t kill_stop = Bit(SIGKILL) | Bit(SIGSTOP);
  ASSERT_THAT(RtSigprocmask(SIG_BLOCK, &kill_stop, nullptr), SyscallSucceeds());
  EXPECT_EQ(CurrentMask(), 0u);
}

TEST_F(SigprocmaskTest, InvalidHowIsEinval) {
  const uint64_t set = Bit(SIGUSR1);
  const uint64_t before = CurrentMask();
  EXPECT_THAT(RtSigprocmask(3, &set, nullptr), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(RtSigprocmask(-1, &set, nullptr), SyscallFailsWithErrno(EINVAL));
  EXPECT_EQ(CurrentMask(), before);
}

// Without a new set, how is not looked at: the call only reads the mask.
TEST_F(SigprocmaskTest, HowIgnoredWithoutSet) {
  uint64_t old = 0;
  EXPECT_THAT(RtSigprocmask(12345, nullptr, &old), SyscallSucceedsWithValue(0));
  EXPECT_EQ(old, CurrentMask());
}

TEST_F(SigprocmaskTest, BadSigsetSizeIsEinval) {
  uint64_t old;
  EXPECT_THAT(RtSigprocmask(SIG_BLOCK, nullptr, &old, 4),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(RtSigprocmask(SIG_BLOCK, nullptr, &old, 16),
              SyscallFailsWithErrno(EINVAL));
}

TEST_F(SigprocmaskTest, BadPointersAreEfault) {
  EXPECT_THAT(RtSigprocmask(SIG_BLOCK, reinterpret_cast<uint64_t*>(1), nullptr),
              SyscallFailsWithErrno(EFAULT));
  EXPECT_THAT(RtSigprocmask(SIG_BLOCK, nullptr, reinterpret_cast<uint64_t*>(1)),
              SyscallFailsWithErrno(EFAULT));
}

std::atomic<int> usr1_count;
std::atomic<int> rt_count;

void CountUsr1(int) { usr1_count++; }
void CountRt(int) { rt_count++; }

struct sigaction HandlerAction(void (*h)(int)) {
  struct sigaction act = {};
  act.sa_handler = h;
  sigemptyset(&act.sa_mask);
  return act;
}

// A blocked signal stays pending, and is delivered as soon as it is
// unblocked: before the unblocking call returns.
TEST_F(SigprocmaskTest, BlockedSignalPendsUntilUnblocked) {
  ScopedSigaction action(SIGUSR1, HandlerAction(CountUsr1));
  usr1_count = 0;
  const uint64_t usr1 = Bit(SIGUSR1);
  ASSERT_THAT(RtSigprocmask(SIG_BLOCK, &usr1, nullptr), SyscallSucceeds());

  ASSERT_THAT(SendToSelf(SIGUSR1), SyscallSucceeds());
  EXPECT_EQ(usr1_count, 0);
  uint64_t pending = 0;
  ASSERT_THAT(RtSigpending(&pending), SyscallSucceedsWithValue(0));
  EXPECT_EQ(pending & usr1, usr1);

  ASSERT_THAT(RtSigprocmask(SIG_UNBLOCK, &usr1, nullptr), SyscallSucceeds());
  EXPECT_EQ(usr1_count, 1);
  ASSERT_THAT(RtSigpending(&pending), SyscallSucceeds());
  EXPECT_EQ(pending & usr1, 0u);
}

// Standard signals do not queue: two sends while blocked deliver once.
TEST_F(SigprocmaskTest, StandardSignalsDoNotQueue) {
  ScopedSigaction action(SIGUSR1, HandlerAction(CountUsr1));
  usr1_count = 0;
  const uint64_t usr1 = Bit(SIGUSR1);
  ASSERT_THAT(RtSigprocmask(SIG_BLOCK, &usr1, nullptr), SyscallSucceeds());
  ASSERT_THAT(SendToSelf(SIGUSR1), SyscallSucceeds());
  ASSERT_THAT(SendToSelf(SIGUSR1), SyscallSucceeds());
  ASSERT_THAT(RtSigprocmask(SIG_UNBLOCK, &usr1, nullptr), SyscallSucceeds());
  EXPECT_EQ(usr1_count, 1);
}

// Real-time signals queue: each send is delivered.
TEST_F(SigprocmaskTest, RealtimeSignalsQueue) {
  const int sig = SIGRTMIN + 2;
  ScopedSigaction action(sig, HandlerAction(CountRt));
  rt_count = 0;
  const uint64_t rt = Bit(sig);
  ASSERT_THAT(RtSigprocmask(SIG_BLOCK, &rt, nullptr), SyscallSucceeds());
  for (int i = 0; i < 3; i++) {
    ASSERT_THAT(SendToSelf(sig), SyscallSucceeds());
  }
  ASSERT_THAT(RtSigprocmask(SIG_UNBLOCK, &rt, nullptr), SyscallSucceeds());
  EXPECT_EQ(rt_count, 3);
}

TEST_F(SigprocmaskTest, SigpendingBadSizeIsEinval) {
  uint64_t set;
  EXPECT_THAT(RtSigpending(&set, 16), SyscallFailsWithErrno(EINVAL));
}

TEST_F(SigprocmaskTest, SigpendingBadPointerIsEfault) {
  EXPECT_THAT(RtSigpending(reinterpret_cast<uint64_t*>(1)),
              SyscallFailsWithErrno(EFAULT));
}

// An unblocked signal whose action is SIG_IGN is discarded.
TEST_F(SigprocmaskTest, IgnoredSignalIsDiscarded) {
  struct sigaction act = HandlerAction(nullptr);
  act.sa_handler = SIG_IGN;
  ScopedSigaction action(SIGUSR2, act);
  ASSERT_THAT(SendToSelf(SIGUSR2), SyscallSucceeds());
  uint64_t pending = 0;
  ASSERT_THAT(RtSigpending(&pending), SyscallSucceeds());
  EXPECT_EQ(pending & Bit(SIGUSR2), 0u);
}

// A blocked signal is never ignored at send time, since its action may
// change before it is unblocked (kernel/signal.c, sig_ignored).
TEST_F(SigprocmaskTest, BlockedIgnoredSignalPends) {
  struct sigaction act = HandlerAction(nullptr);
  act.sa_handler = SIG_IGN;
  ScopedSigaction action(SIGUSR2, act);
  const uint64_t usr2 = Bit(SIGUSR2);
  ASSERT_THAT(RtSigprocmask(SIG_BLOCK, &usr2, nullptr), SyscallSucceeds());
  ASSERT_THAT(SendToSelf(SIGUSR2), SyscallSucceeds());
  uint64_t pending = 0;
  ASSERT_THAT(RtSigpending(&pending), SyscallSucceeds());
  EXPECT_EQ(pending & usr2, usr2);

  // Unblocked while still ignored, it is discarded.
  ASSERT_THAT(RtSigprocmask(SIG_UNBLOCK, &usr2, nullptr), SyscallSucceeds());
  ASSERT_THAT(RtSigpending(&pending), SyscallSucceeds());
  EXPECT_EQ(pending & usr2, 0u);
}

// Setting a signal's action to SIG_IGN discards it if pending
// (kernel/signal.c, do_sigaction).
TEST_F(SigprocmaskTest, IgnoringDiscardsPending) {
  ScopedSigaction action(SIGUSR1, HandlerAction(CountUsr1));
  usr1_count = 0;
  const uint64_t usr1 = Bit(SIGUSR1);
  ASSERT_THAT(RtSigprocmask(SIG_BLOCK, &usr1, nullptr), SyscallSucceeds());
  ASSERT_THAT(SendToSelf(SIGUSR1), SyscallSucceeds());

  struct sigaction ign = HandlerAction(nullptr);
  ign.sa_handler = SIG_IGN;
  ASSERT_THAT(sigaction(SIGUSR1, &ign, nullptr), SyscallSucceeds());
  uint64_t pending = 0;
  ASSERT_THAT(RtSigpending(&pending), SyscallSucceeds());
  EXPECT_EQ(pending & usr1, 0u);

  ASSERT_THAT(RtSigprocmask(SIG_UNBLOCK, &usr1, nullptr), SyscallSucceeds());
  EXPECT_EQ(usr1_count, 0);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
