// sigaltstack(2) and handlers that run on the alternate stack.

#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/signal_util.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)
#endif

// Large enough for any signal frame, with AVX-512 state.
constexpr size_t kStackSize = 64 * 1024;

// The kernel's minimum (include/uapi/asm-generic/signal.h); libc's
// MINSIGSTKSZ may be a sysconf call.
constexpr size_t kKernelMinStack = 2048;

long Sigaltstack(const stack_t* ss, stack_t* old) {
  return syscall(SYS_sigaltstack, ss, old);
}

long SendToSelf(int sig) {
  return syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), sig);
}

// Each test starts with no alternate stack and puts back what it found.
class SigaltstackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_THAT(Sigaltstack(nullptr, &saved_), SyscallSucceeds());
    stack_t off = {};
    off.ss_flags = SS_DISABLE;
    ASSERT_THAT(Sigaltstack(&off, nullptr), SyscallSucceeds());
    stack_.assign(kStackSize, 0);
  }
  void TearDown() override {
    if (saved_.ss_flags & SS_DISABLE) {
      saved_.ss_size = 0;
    }
    saved_.ss_flags &= ~SS_ONSTACK;
    EXPECT_THAT(Sigaltstack(&saved_, nullptr), SyscallSucceeds());
  }

  stack_t Stack(int flags = 0) {
    stack_t ss = {};
    ss.ss_sp = stack_.data();
    ss.ss_size = stack_.size();
    ss.ss_flags = flags;
    return ss;
  }

  std::vector<char> stack_;

 private:
  stack_t saved_;
};

TEST_F(SigaltstackTest, DisabledReadsBackEmpty) {
  stack_t got;
  memset(&got, 0xff, sizeof(got));
  ASSERT_THAT(Sigaltstack(nullptr, &got), SyscallSucceedsWithValue(0));
  EXPECT_EQ(got.ss_flags, SS_DISABLE);
  EXPECT_EQ(got.ss_sp, nullptr);
  EXPECT_EQ(got.ss_size, 0u);
}

TEST_F(SigaltstackTest, SetGetRoundTrip) {
  const stack_t ss = Stack();
  ASSERT_THAT(Sigaltstack(&ss, nullptr), SyscallSucceedsWithValue(0));
  stack_t got;
  ASSERT_THAT(Sigaltstack(nullptr, &got), SyscallSucceeds());
  EXPECT_EQ(got.ss_sp, ss.ss_sp);
  EXPECT_EQ(got.ss_size, ss.ss_size);
  EXPECT_EQ(got.ss_flags, 0);
}

// Setting returns the previous stack in the same call.
TEST_F(SigaltstackTest, SetReturnsOld) {
  const stack_t ss = Stack();
  ASSERT_THAT(Sigaltstack(&ss, nullptr), SyscallSucceeds());
  stack_t off = {}, old;
  off.ss_flags = SS_DISABLE;
  ASSERT_THAT(Sigaltstack(&off, &old), SyscallSucceeds());
  EXPECT_EQ(old.ss_sp, ss.ss_sp);
  EXPECT_EQ(old.ss_size, ss.ss_size);
  EXPECT_EQ(old.ss_flags, 0);
}

// SS_ONSTACK is accepted as a request, meaning the same as 0, for old
// programs (kernel/signal.c, do_sigaltstack).
TEST_F(SigaltstackTest, OnstackFlagMeansEnable) {
  const stack_t ss = Stack(SS_ONSTACK);
  ASSERT_THAT(Sigaltstack(&ss, nullptr), SyscallSucceeds());
  stack_t got;
  ASSERT_THAT(Sigaltstack(nullptr, &got), SyscallSucceeds());
  EXPECT_EQ(got.ss_flags, 0);
}

TEST_F(SigaltstackTest, AutodisarmReadsBack) {
  const stack_t ss = Stack(SS_AUTODISARM);
  ASSERT_THAT(Sigaltstack(&ss, nullptr), SyscallSucceeds());
  stack_t got;
  ASSERT_THAT(Sigaltstack(nullptr, &got), SyscallSucceeds());
  EXPECT_EQ(static_cast<unsigned>(got.ss_flags), SS_AUTODISARM);
}

TEST_F(SigaltstackTest, TooSmallIsEnomem) {
  stack_t ss = Stack();
  ss.ss_size = kKernelMinStack - 1;
  EXPECT_THAT(Sigaltstack(&ss, nullptr), SyscallFailsWithErrno(ENOMEM));
  ss.ss_size = 0;
  EXPECT_THAT(Sigaltstack(&ss, nullptr), SyscallFailsWithErrno(ENOMEM));
}

// Disabling ignores the size.
TEST_F(SigaltstackTest, DisableIgnoresSize) {
  stack_t off = {};
  off.ss_flags = SS_DISABLE;
  off.ss_size = 1;
  EXPECT_THAT(Sigaltstack(&off, nullptr), SyscallSucceeds());
}

TEST_F(SigaltstackTest, UnknownFlagsAreEinval) {
  stack_t ss = Stack(0x1234);
  EXPECT_THAT(Sigaltstack(&ss, nullptr), SyscallFailsWithErrno(EINVAL));
  ss.ss_flags = SS_DISABLE | SS_ONSTACK;
  EXPECT_THAT(Sigaltstack(&ss, nullptr), SyscallFailsWithErrno(EINVAL));
}

TEST_F(SigaltstackTest, BadPointersAreEfault) {
  EXPECT_THAT(Sigaltstack(reinterpret_cast<stack_t*>(1), nullptr),
              SyscallFailsWithErrno(EFAULT));
  EXPECT_THAT(Sigaltstack(nullptr, reinterpret_cast<stack_t*>(1)),
              SyscallFailsWithErrno(EFAULT));
}

// What a handler saw, for the test to check after it returns.
struct HandlerView {
  int count;
  uintptr_t local_addr;
  long get_result;
  stack_t inside;
  long set_result;
  int set_errno;
};
HandlerView view;

// async-signal-safe: records the address of a local, then queries and tries
// to change the alternate stack with raw system calls.
void RecordingHandler(int) {
  volatile char local = 0;
  view.count++;
  view.local_addr = reinterpret_cast<uintptr_t>(&local);
  view.get_result = syscall(SYS_sigaltstack, nullptr, &view.inside);
  stack_t off = {};
  off.ss_flags = SS_DISABLE;
  view.set_result = syscall(SYS_sigaltstack, &off, nullptr);
  view.set_errno = errno;
}

struct sigaction RecordingAction(int flags) {
  struct sigaction act = {};
  act.sa_handler = RecordingHandler;
  act.sa_flags = flags;
  sigemptyset(&act.sa_mask);
  return act;
}

bool OnStack(uintptr_t addr, const std::vector<char>& stack) {
  const uintptr_t lo = reinterpret_cast<uintptr_t>(stack.data());
  return addr >= lo && addr < lo + stack.size();
}

TEST_F(SigaltstackTest, HandlerRunsOnAltStack) {
  const stack_t ss = Stack();
  ASSERT_THAT(Sigaltstack(&ss, nullptr), SyscallSucceeds());
  ScopedSigaction action(SIGUSR1, RecordingAction(SA_ONSTACK));
  memset(&view, 0, sizeof(view));

  ASSERT_THAT(SendToSelf(SIGUSR1), SyscallSucceeds());
  ASSERT_EQ(view.count, 1);
  EXPECT_TRUE(OnStack(view.local_addr, stack_))
      << std::hex << "local at 0x" << view.local_addr << ", stack at "
      << static_cast<void*>(stack_.data());

  // Inside, the stack reads as in use, and cannot be changed.
  EXPECT_EQ(view.get_result, 0);
  EXPECT_EQ(view.inside.ss_flags, SS_ONSTACK);
  EXPECT_EQ(view.inside.ss_sp, ss.ss_sp);
  EXPECT_EQ(view.set_result, -1);
  EXPECT_EQ(view.set_errno, EPERM);

  // Back outside it is simply enabled.
  stack_t got;
  ASSERT_THAT(Sigaltstack(nullptr, &got), SyscallSucceeds());
  EXPECT_EQ(got.ss_flags, 0);
}

TEST_F(SigaltstackTest, HandlerWithoutOnstackUsesThreadStack) {
  const stack_t ss = Stack();
  ASSERT_THAT(Sigaltstack(&ss, nullptr), SyscallSucceeds());
  ScopedSigaction action(SIGUSR1, RecordingAction(0));
  memset(&view, 0, sizeof(view));

  ASSERT_THAT(SendToSelf(SIGUSR1), SyscallSucceeds());
  ASSERT_EQ(view.count, 1);
  EXPECT_FALSE(OnStack(view.local_addr, stack_));
  EXPECT_EQ(view.inside.ss_flags, 0);
  // Not on the stack, so it may be changed: the handler disabled it.
  EXPECT_EQ(view.set_result, 0);
}

TEST_F(SigaltstackTest, OnstackWithoutAltStackUsesThreadStack) {
  ScopedSigaction action(SIGUSR1, RecordingAction(SA_ONSTACK));
  memset(&view, 0, sizeof(view));
  ASSERT_THAT(SendToSelf(SIGUSR1), SyscallSucceeds());
  ASSERT_EQ(view.count, 1);
  EXPECT_FALSE(OnStack(view.local_addr, stack_));
  EXPECT_EQ(view.inside.ss_flags, SS_DISABLE);
}

// With SS_AUTODISARM the alternate stack is disarmed while the handler runs
// (so it can be changed and nested signals do not reuse it), and rearmed by
// rt_sigreturn.
TEST_F(SigaltstackTest, AutodisarmDuringHandler) {
  const stack_t ss = Stack(SS_AUTODISARM);
  ASSERT_THAT(Sigaltstack(&ss, nullptr), SyscallSucceeds());
  ScopedSigaction action(SIGUSR1, RecordingAction(SA_ONSTACK));
  memset(&view, 0, sizeof(view));

  ASSERT_THAT(SendToSelf(SIGUSR1), SyscallSucceeds());
  ASSERT_EQ(view.count, 1);
  EXPECT_TRUE(OnStack(view.local_addr, stack_));
  EXPECT_EQ(view.inside.ss_flags, SS_DISABLE);
  EXPECT_EQ(view.set_result, 0);

  stack_t got;
  ASSERT_THAT(Sigaltstack(nullptr, &got), SyscallSucceeds());
  EXPECT_EQ(got.ss_sp, ss.ss_sp);
  EXPECT_EQ(static_cast<unsigned>(got.ss_flags), SS_AUTODISARM);
}

// A stack overflow can only be handled on an alternate stack: run a handler
// for SIGSEGV there while the thread's stack pointer is unusable.
void SegvOnAltStack(int) {
  // Reaching here at all shows the handler had a stack; leave the bad
  // context behind.
  _exit(0);
}

TEST(SigaltstackDeathTest, HandlesFaultWithBadStackPointer) {
  EXPECT_EXIT(
      {
        static char alt[kStackSize];
        stack_t ss = {};
        ss.ss_sp = alt;
        ss.ss_size = sizeof(alt);
        sigaltstack(&ss, nullptr);
        struct sigaction act = {};
        act.sa_handler = SegvOnAltStack;
        act.sa_flags = SA_ONSTACK;
        sigaction(SIGSEGV, &act, nullptr);
        // Point the stack pointer at unmapped memory and push.
        asm volatile("mov $0x10, %%rsp\n push %%rax\n" ::: "memory");
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
