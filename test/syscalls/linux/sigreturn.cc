// The x86-64 signal frame and rt_sigreturn(2): what a handler's ucontext
// holds (registers, FPU and AVX state, the XSAVE software bytes), that
// changes a handler makes to it take effect, nested handlers, and what
// happens when a frame cannot be written or read (SIGSEGV).

#include <cpuid.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
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

constexpr uint32_t kFpXstateMagic1 = 0x46505853;
constexpr uint32_t kFpXstateMagic2 = 0x46505845;

bool HasAvx() {
  unsigned int eax, ebx, ecx, edx;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return false;
  // AVX and OSXSAVE, and the OS enabled the YMM state in XCR0.
  if (!(ecx & bit_AVX) || !(ecx & bit_OSXSAVE)) return false;
  uint32_t xcr0_lo, xcr0_hi;
  asm volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  return (xcr0_lo & 6) == 6;
}

long Tgkill(int sig) {
  return syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), sig);
}

// What handlers saw.
volatile int handled;
volatile uint64_t seen_ymm0_high[2];
volatile uint32_t seen_magic1;
volatile uint32_t seen_magic2;
volatile uint32_t seen_xstate_size;
volatile uint64_t seen_eflags;

class SigreturnTest : public ::testing::Test {
 protected:
  void SetUp() override {
    handled = 0;
    ASSERT_EQ(pthread_sigmask(SIG_SETMASK, nullptr, &saved_), 0);
    sigset_t usr = SignalSet({SIGUSR1, SIGUSR2});
    ASSERT_EQ(pthread_sigmask(SIG_UNBLOCK, &usr, nullptr), 0);
  }
  void TearDown() override {
    EXPECT_EQ(pthread_sigmask(SIG_SETMASK, &saved_, nullptr), 0);
  }

 private:
  sigset_t saved_;
};

struct sigaction Action(void (*fn)(int, siginfo_t*, void*), int flags = 0) {
  struct sigaction act = {};
  act.sa_sigaction = fn;
  act.sa_flags = SA_SIGINFO | flags;
  sigemptyset(&act.sa_mask);
  return act;
}

// General registers.

// async-signal-safe: edits the saved context only.
void SetR12Handler(int, siginfo_t*, void* uc) {
  handled = handled + 1;
  auto* ctx = static_cast<ucontext_t*>(uc);
  ctx->uc_mcontext.gregs[REG_R12] = 0x1122334455667788;
  ctx->uc_mcontext.gregs[REG_R13] ^= 0xff;
}

TEST_F(SigreturnTest, HandlerChangesToRegistersTakeEffect) {
  ScopedSigaction action(SIGUSR1, Action(SetR12Handler));
  long nr = SYS_tgkill;
  uint64_t r12 = 0, r13 = 0x100;
  const long tgid = getpid(), tid = syscall(SYS_gettid), sig = SIGUSR1;
  asm volatile(
      "mov %[r13in], %%r13\n"
      "xor %%r12, %%r12\n"
      "syscall\n"
      "mov %%r12, %[r12out]\n"
      "mov %%r13, %[r13out]\n"
      : "+a"(nr), [r12out] "=m"(r12), [r13out] "=m"(r13)
      : [r13in] "r"(r13), "D"(tgid), "S"(tid), "d"(sig)
      : "rcx", "r11", "r12", "r13", "memory");
  ASSERT_EQ(handled, 1);
  EXPECT_EQ(nr, 0);
  EXPECT_EQ(r12, 0x1122334455667788u);
  EXPECT_EQ(r13, 0x1ffu);
}

// async-signal-safe: reads registers and the saved context.
void EflagsHandler(int, siginfo_t*, void* uc) {
  uint64_t flags;
  asm volatile("pushfq\n pop %0" : "=r"(flags));
  seen_eflags = flags;
  handled = handled + 1;
}

TEST_F(SigreturnTest, DirectionFlagClearInHandlerRestoredAfter) {
  ScopedSigaction action(SIGUSR1, Action(EflagsHandler));
  long nr = SYS_tgkill;
  uint64_t after = 0;
  const long tgid = getpid(), tid = syscall(SYS_gettid), sig = SIGUSR1;
  asm volatile(
      "std\n"
      "syscall\n"
      "pushfq\n pop %[after]\n"
      "cld\n"
      : "+a"(nr), [after] "=r"(after)
      : "D"(tgid), "S"(tid), "d"(sig)
      : "rcx", "r11", "memory");
  ASSERT_EQ(handled, 1);
  constexpr uint64_t kDf = 0x400;
  EXPECT_EQ(seen_eflags & kDf, 0u) << "handler ran with DF set";
  EXPECT_EQ(after & kDf, kDf) << "DF lost across the handler";
}

// FPU state in the frame.

// async-signal-safe: reads the frame.
void XstateHandler(int, siginfo_t*, void* uc) {
  auto* ctx = static_cast<ucontext_t*>(uc);
  const uint8_t* fp = reinterpret_cast<const uint8_t*>(ctx->uc_mcontext.fpregs);
  // struct _fpx_sw_bytes at offset 464 of the FXSAVE area.
  memcpy(const_cast<uint32_t*>(&seen_magic1), fp + 464, 4);
  uint32_t size;
  memcpy(&size, fp + 464 + 16, 4);
  seen_xstate_size = size;
  uint32_t magic2;
  memcpy(&magic2, fp + size, 4);
  seen_magic2 = magic2;
  handled = handled + 1;
}

TEST_F(SigreturnTest, FrameHasXstateSoftwareBytes) {
  SKIP_IF(!HasAvx());
  ScopedSigaction action(SIGUSR1, Action(XstateHandler));
  ASSERT_THAT(Tgkill(SIGUSR1), SyscallSucceeds());
  ASSERT_EQ(handled, 1);
  EXPECT_EQ(seen_magic1, kFpXstateMagic1);
  EXPECT_GE(seen_xstate_size, 576u) << "legacy area + header + YMM";
  EXPECT_EQ(seen_magic2, kFpXstateMagic2);
}

// async-signal-safe: writes the saved XMM0 and MXCSR.
void SetXmm0Handler(int, siginfo_t*, void* uc) {
  auto* ctx = static_cast<ucontext_t*>(uc);
  for (int i = 0; i < 4; i++) {
    ctx->uc_mcontext.fpregs->_xmm[0].element[i] = 0xabcd0000 + i;
  }
  // Round toward zero.
  ctx->uc_mcontext.fpregs->mxcsr = 0x7f80;
  handled = handled + 1;
}

TEST_F(SigreturnTest, HandlerChangesToFpuStateTakeEffect) {
  ScopedSigaction action(SIGUSR1, Action(SetXmm0Handler));
  uint32_t saved_mxcsr;
  asm volatile("stmxcsr %0" : "=m"(saved_mxcsr));
  alignas(16) uint32_t out[4] = {};
  uint32_t mxcsr_after = 0;
  long nr = SYS_tgkill;
  const long tgid = getpid(), tid = syscall(SYS_gettid), sig = SIGUSR1;
  asm volatile(
      "pxor %%xmm0, %%xmm0\n"
      "syscall\n"
      "movdqa %%xmm0, (%[out])\n"
      "stmxcsr %[mx]\n"
      : "+a"(nr), [mx] "=m"(mxcsr_after)
      : [out] "r"(out), "D"(tgid), "S"(tid), "d"(sig)
      : "rcx", "r11", "memory", "xmm0");
  asm volatile("ldmxcsr %0" ::"m"(saved_mxcsr));
  ASSERT_EQ(handled, 1);
  for (int i = 0; i < 4; i++) EXPECT_EQ(out[i], 0xabcd0000u + i) << i;
  EXPECT_EQ(mxcsr_after, 0x7f80u);
}

// AVX: the upper halves of the YMM registers.

// async-signal-safe: reads and clobbers registers.
void YmmHandler(int, siginfo_t*, void*) {
  alignas(32) uint64_t ymm0[4];
  asm volatile("vmovdqu %%ymm0, %0" : "=m"(ymm0));
  seen_ymm0_high[0] = ymm0[2];
  seen_ymm0_high[1] = ymm0[3];
  asm volatile(
      "vpcmpeqd %%ymm0, %%ymm0, %%ymm0\n"
      "vmovdqa %%ymm0, %%ymm1\n vmovdqa %%ymm0, %%ymm7\n"
      "vmovdqa %%ymm0, %%ymm15\n" ::
          : "xmm0", "xmm1", "xmm7", "xmm15");
  handled = handled + 1;
}

TEST_F(SigreturnTest, YmmPreservedAndCleanInHandler) {
  SKIP_IF(!HasAvx());
  ScopedSigaction action(SIGUSR1, Action(YmmHandler));
  alignas(32) uint64_t in[4][4], out[4][4];
  for (int r = 0; r < 4; r++) {
    for (int q = 0; q < 4; q++) in[r][q] = 0x0101010101010101ULL * (r * 4 + q + 1);
  }
  memset(out, 0, sizeof(out));
  long nr = SYS_tgkill;
  const long tgid = getpid(), tid = syscall(SYS_gettid), sig = SIGUSR1;
  asm volatile(
      "vmovdqu 0x00(%[in]), %%ymm0\n vmovdqu 0x20(%[in]), %%ymm1\n"
      "vmovdqu 0x40(%[in]), %%ymm7\n vmovdqu 0x60(%[in]), %%ymm15\n"
      "syscall\n"
      "vmovdqu %%ymm0, 0x00(%[out])\n vmovdqu %%ymm1, 0x20(%[out])\n"
      "vmovdqu %%ymm7, 0x40(%[out])\n vmovdqu %%ymm15, 0x60(%[out])\n"
      "vzeroupper\n"
      : "+a"(nr)
      : [in] "r"(in), [out] "r"(out), "D"(tgid), "S"(tid), "d"(sig)
      : "rcx", "r11", "memory", "xmm0", "xmm1", "xmm7", "xmm15");
  ASSERT_EQ(handled, 1);
  EXPECT_EQ(memcmp(in, out, sizeof(in)), 0);
  // The handler started with the initial (zero) AVX state.
  EXPECT_EQ(seen_ymm0_high[0], 0u);
  EXPECT_EQ(seen_ymm0_high[1], 0u);
}

// Nested handlers: SIGUSR1's handler sends SIGUSR2, whose handler clobbers
// XMM state; each level gets its own state back.

volatile int nested_ok;

// async-signal-safe: registers, globals and tgkill.
void InnerHandler(int, siginfo_t*, void*) {
  asm volatile("pcmpeqd %%xmm3, %%xmm3\n" ::: "xmm3");
  handled = handled + 1;
}

void OuterHandler(int, siginfo_t*, void*) {
  alignas(16) uint32_t pattern[4] = {1, 2, 3, 4}, after[4];
  long nr = SYS_tgkill;
  const long tgid = getpid(), tid = syscall(SYS_gettid), sig = SIGUSR2;
  asm volatile(
      "movdqa (%[p]), %%xmm3\n"
      "syscall\n"
      "movdqa %%xmm3, (%[a])\n"
      : "+a"(nr)
      : [p] "r"(pattern), [a] "r"(after), "D"(tgid), "S"(tid), "d"(sig)
      : "rcx", "r11", "memory", "xmm3");
  nested_ok = memcmp(pattern, after, sizeof(after)) == 0 && nr == 0;
  handled = handled + 1;
}

TEST_F(SigreturnTest, NestedHandlersKeepTheirState) {
  nested_ok = 0;
  ScopedSigaction outer(SIGUSR1, Action(OuterHandler));
  ScopedSigaction inner(SIGUSR2, Action(InnerHandler));
  alignas(16) uint32_t pattern[4] = {9, 8, 7, 6}, after[4];
  long nr = SYS_tgkill;
  const long tgid = getpid(), tid = syscall(SYS_gettid), sig = SIGUSR1;
  asm volatile(
      "movdqa (%[p]), %%xmm3\n"
      "syscall\n"
      "movdqa %%xmm3, (%[a])\n"
      : "+a"(nr)
      : [p] "r"(pattern), [a] "r"(after), "D"(tgid), "S"(tid), "d"(sig)
      : "rcx", "r11", "memory", "xmm3");
  EXPECT_EQ(handled, 2);
  EXPECT_TRUE(nested_ok) << "the outer handler lost its state";
  EXPECT_EQ(memcmp(pattern, after, sizeof(after)), 0);
}

// Several pending signals stack frames before the first handler runs: the
// last set up runs first.

volatile int order[4];
volatile int order_n;

void RecordHandler(int signo, siginfo_t*, void*) { order[order_n++] = signo; }

TEST_F(SigreturnTest, PendingSignalsStackFrames) {
  order_n = 0;
  ScopedSigaction a(SIGUSR1, Action(RecordHandler));
  ScopedSigaction b(SIGUSR2, Action(RecordHandler));
  sigset_t both = SignalSet({SIGUSR1, SIGUSR2});
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &both, nullptr), 0);
  ASSERT_THAT(raise(SIGUSR2), SyscallSucceeds());
  ASSERT_THAT(raise(SIGUSR1), SyscallSucceeds());
  ASSERT_EQ(pthread_sigmask(SIG_UNBLOCK, &both, nullptr), 0);
  ASSERT_EQ(order_n, 2);
  // SIGUSR1 (lower) is dequeued first, so its frame is below SIGUSR2's and
  // SIGUSR2's handler runs first.
  EXPECT_EQ(order[0], SIGUSR2);
  EXPECT_EQ(order[1], SIGUSR1);
}

// Bad frames.

sigjmp_buf segv_return;
volatile int segv_code;

void SegvHandler(int, siginfo_t* info, void*) {
  segv_code = info->si_code;
  siglongjmp(segv_return, 1);
}

TEST_F(SigreturnTest, UnreadableFrameIsSigsegv) {
  // The handler needs a stack of its own: rt_sigreturn runs with a bogus
  // stack pointer.
  std::vector<char> altstack(1 << 16);
  stack_t ss = {};
  ss.ss_sp = altstack.data();
  ss.ss_size = altstack.size();
  stack_t old_ss;
  ASSERT_THAT(sigaltstack(&ss, &old_ss), SyscallSucceeds());
  ScopedSigaction action(SIGSEGV, Action(SegvHandler, SA_ONSTACK));
  void* page = mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(page, MAP_FAILED);
  segv_code = 0;
  if (sigsetjmp(segv_return, 1) == 0) {
    uint64_t bad_sp = reinterpret_cast<uint64_t>(page) + 2048;
    asm volatile(
        "mov %0, %%rsp\n"
        "mov $15, %%eax\n"  // rt_sigreturn
        "syscall\n"
        "ud2\n" ::"r"(bad_sp)
        : "memory");
  }
  EXPECT_EQ(segv_code, SI_KERNEL);
  EXPECT_THAT(munmap(page, 4096), SyscallSucceeds());
  EXPECT_THAT(sigaltstack(&old_ss, nullptr), SyscallSucceeds());
}

void NopHandler(int) {}

// Delivers SIGUSR1 with a handler while the stack is read-only: the frame
// cannot be written.
void SignalOnReadOnlyStack() {
  struct sigaction act = {};
  act.sa_handler = NopHandler;
  sigaction(SIGUSR1, &act, nullptr);
  void* page =
      mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  uint64_t sp = reinterpret_cast<uint64_t>(page) + 4096;
  long nr = SYS_tgkill;
  const long tgid = getpid(), tid = syscall(SYS_gettid), sig = SIGUSR1;
  asm volatile("mov %[sp], %%rsp\n syscall\n ud2\n"
               : "+a"(nr)
               : [sp] "r"(sp), "D"(tgid), "S"(tid), "d"(sig)
               : "rcx", "r11", "memory");
}

// The smallest alternate stack sigaltstack accepts, which is too small for a
// frame with this CPU's XSAVE state (AT_MINSIGSTKSZ tells).
constexpr size_t kSmallStack = 2048;

// A handler on an alternate stack too small for its frame.
void OverflowAltstack() {
  static char stack[kSmallStack];
  stack_t ss = {};
  ss.ss_sp = stack;
  ss.ss_size = sizeof(stack);
  sigaltstack(&ss, nullptr);
  struct sigaction act = {};
  act.sa_handler = NopHandler;
  act.sa_flags = SA_ONSTACK;
  sigaction(SIGUSR1, &act, nullptr);
  raise(SIGUSR1);
}

TEST(SigreturnDeathTest, UnwritableStackKills) {
  EXPECT_EXIT(SignalOnReadOnlyStack(), ::testing::KilledBySignal(SIGSEGV), "");
}

TEST(SigreturnDeathTest, AltstackOverflowKills) {
  SKIP_IF(getauxval(AT_MINSIGSTKSZ) <= kSmallStack);
  EXPECT_EXIT(OverflowAltstack(), ::testing::KilledBySignal(SIGSEGV), "");
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
