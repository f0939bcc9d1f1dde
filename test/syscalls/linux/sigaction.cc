// rt_sigaction(2).
//
// Most tests use the raw system call and the kernel's struct sigaction, so
// that libc's own checks and its SA_RESTORER trampoline stay out of the way.
// None of them delivers a signal to a handler installed this way.

#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/signal_util.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

#ifndef SA_RESTORER
#define SA_RESTORER 0x04000000
#endif

// The kernel's struct sigaction on x86-64 (arch/x86/include/uapi/asm/signal.h
// with the 64-bit sigset of the rt_ calls).
struct KernelSigaction {
  uintptr_t handler;
  uint64_t flags;
  uintptr_t restorer;
  uint64_t mask;
};

constexpr size_t kSigsetSize = sizeof(uint64_t);

long RtSigaction(int sig, const KernelSigaction* act, KernelSigaction* old,
                 size_t size = kSigsetSize) {
  return syscall(SYS_rt_sigaction, sig, act, old, size);
}

uint64_t Bit(int sig) { return uint64_t{1} << (sig - 1); }

void Handler(int) {}
void OtherHandler(int) {}

// RestoreAction puts back a signal's action when the test ends.
class RestoreAction {
 public:
  explicit RestoreAction(int sig) : sig_(sig) {
    EXPECT_THAT(RtSigaction(sig, nullptr, &old_), SyscallSucceeds());
  }
  ~RestoreAction() {
    EXPECT_THAT(RtSigaction(sig_, &old_, nullptr), SyscallSucceeds());
  }

 private:
  int sig_;
  KernelSigaction old_;
};

TEST(SigactionTest, RawRoundTrip) {
  RestoreAction restore(SIGUSR1);
  const KernelSigaction act = {
      reinterpret_cast<uintptr_t>(Handler),
      SA_SIGINFO | SA_RESTART | SA_NODEFER | SA_RESTORER,
      0x12345678,
      Bit(SIGUSR2) | Bit(SIGTERM) | Bit(SIGRTMIN + 1),
  };
  ASSERT_THAT(RtSigaction(SIGUSR1, &act, nullptr), SyscallSucceedsWithValue(0));

  KernelSigaction got;
  memset(&got, 0xff, sizeof(got));
  ASSERT_THAT(RtSigaction(SIGUSR1, nullptr, &got), SyscallSucceedsWithValue(0));
  EXPECT_EQ(got.handler, act.handler);
  EXPECT_EQ(got.flags, act.flags);
  EXPECT_EQ(got.restorer, act.restorer);
  EXPECT_EQ(got.mask, act.mask);
}

// Setting returns the previous action in the same call.
TEST(SigactionTest, SetReturnsOld) {
  RestoreAction restore(SIGUSR2);
  KernelSigaction first = {reinterpret_cast<uintptr_t>(Handler), SA_RESTORER,
                           1, Bit(SIGINT)};
  KernelSigaction second = {reinterpret_cast<uintptr_t>(OtherHandler),
                            SA_RESTORER | SA_ONSTACK, 2, 0};
  ASSERT_THAT(RtSigaction(SIGUSR2, &first, nullptr), SyscallSucceeds());
  KernelSigaction old;
  ASSERT_THAT(RtSigaction(SIGUSR2, &second, &old), SyscallSucceeds());
  EXPECT_EQ(old.handler, first.handler);
  EXPECT_EQ(old.flags, first.flags);
  EXPECT_EQ(old.mask, first.mask);
  KernelSigaction now;
  ASSERT_THAT(RtSigaction(SIGUSR2, nullptr, &now), SyscallSucceeds());
  EXPECT_EQ(now.handler, second.handler);
  EXPECT_EQ(now.flags, second.flags);
}

// SIGKILL and SIGSTOP can never be blocked, so they are dropped from a
// handler's mask (kernel/signal.c, do_sigaction).
TEST(SigactionTest, MaskCannotHoldKillOrStop) {
  RestoreAction restore(SIGUSR1);
  const KernelSigaction act = {reinterpret_cast<uintptr_t>(Handler),
                               SA_RESTORER, 0,
                               Bit(SIGKILL) | Bit(SIGSTOP) | Bit(SIGUSR2)};
  ASSERT_THAT(RtSigaction(SIGUSR1, &act, nullptr), SyscallSucceeds());
  KernelSigaction got;
  ASSERT_THAT(RtSigaction(SIGUSR1, nullptr, &got), SyscallSucceeds());
  EXPECT_EQ(got.mask, Bit(SIGUSR2));
}

TEST(SigactionTest, LibcRoundTrip) {
  struct sigaction act = {};
  act.sa_handler = Handler;
  act.sa_flags = SA_RESTART;
  sigemptyset(&act.sa_mask);
  sigaddset(&act.sa_mask, SIGUSR2);
  ScopedSigaction scoped(SIGUSR1, act);

  struct sigaction got;
  ASSERT_THAT(sigaction(SIGUSR1, nullptr, &got), SyscallSucceeds());
  EXPECT_EQ(got.sa_handler, Handler);
  EXPECT_EQ(got.sa_flags & ~SA_RESTORER, SA_RESTART);
  EXPECT_TRUE(sigismember(&got.sa_mask, SIGUSR2));
  EXPECT_FALSE(sigismember(&got.sa_mask, SIGUSR1));
}

TEST(SigactionTest, QueryOnly) {
  EXPECT_THAT(RtSigaction(SIGUSR1, nullptr, nullptr),
              SyscallSucceedsWithValue(0));
}

TEST(SigactionTest, InvalidSignalIsEinval) {
  KernelSigaction old;
  for (int sig : {0, -1, 65, 1000}) {
    EXPECT_THAT(RtSigaction(sig, nullptr, &old), SyscallFailsWithErrno(EINVAL))
        << "signal " << sig;
  }
}

// The actions of SIGKILL and SIGSTOP cannot be changed, not even to SIG_DFL,
// but they can be read.
TEST(SigactionTest, KillAndStopAreFixed) {
  const KernelSigaction handler = {reinterpret_cast<uintptr_t>(Handler),
                                   SA_RESTORER, 0, 0};
  const KernelSigaction dfl = {reinterpret_cast<uintptr_t>(SIG_DFL), 0, 0, 0};
  const KernelSigaction ign = {reinterpret_cast<uintptr_t>(SIG_IGN), 0, 0, 0};
  for (int sig : {SIGKILL, SIGSTOP}) {
    EXPECT_THAT(RtSigaction(sig, &handler, nullptr),
                SyscallFailsWithErrno(EINVAL))
        << "signal " << sig;
    EXPECT_THAT(RtSigaction(sig, &dfl, nullptr), SyscallFailsWithErrno(EINVAL))
        << "signal " << sig;
    EXPECT_THAT(RtSigaction(sig, &ign, nullptr), SyscallFailsWithErrno(EINVAL))
        << "signal " << sig;
    KernelSigaction got;
    ASSERT_THAT(RtSigaction(sig, nullptr, &got), SyscallSucceeds());
    EXPECT_EQ(got.handler, reinterpret_cast<uintptr_t>(SIG_DFL));
  }
}

TEST(SigactionTest, BadSigsetSizeIsEinval) {
  KernelSigaction old;
  EXPECT_THAT(RtSigaction(SIGUSR1, nullptr, &old, 4),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(RtSigaction(SIGUSR1, nullptr, &old, 16),
              SyscallFailsWithErrno(EINVAL));
}

TEST(SigactionTest, BadPointersAreEfault) {
  RestoreAction restore(SIGUSR1);
  EXPECT_THAT(RtSigaction(SIGUSR1, reinterpret_cast<KernelSigaction*>(1),
                          nullptr),
              SyscallFailsWithErrno(EFAULT));
  EXPECT_THAT(RtSigaction(SIGUSR1, nullptr,
                          reinterpret_cast<KernelSigaction*>(1)),
              SyscallFailsWithErrno(EFAULT));
}

// Every catchable signal, standard and real-time, takes a handler.
TEST(SigactionTest, EveryCatchableSignal) {
  for (int sig = 1; sig <= 64; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    RestoreAction restore(sig);
    const KernelSigaction act = {reinterpret_cast<uintptr_t>(Handler),
                                 SA_RESTORER, 0, 0};
    EXPECT_THAT(RtSigaction(sig, &act, nullptr), SyscallSucceeds())
        << "signal " << sig;
  }
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
