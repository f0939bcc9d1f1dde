// The FPU and SSE state across signal handlers: the interrupted code's state
// is saved in the signal frame and restored by rt_sigreturn, and the handler
// starts with a clean state (arch/x86/kernel/signal.c, fpu__clear_user_states).

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

constexpr int kXmmRegs = 16;
constexpr uint32_t kDefaultMxcsr = 0x1f80;
constexpr uint16_t kDefaultFpuCw = 0x037f;

// Round toward zero, all exceptions masked.
constexpr uint32_t kTestMxcsr = 0x7f80;
// Round toward zero, 64-bit precision, all exceptions masked.
constexpr uint16_t kTestFpuCw = 0x0f7f;

struct alignas(16) XmmState {
  uint8_t bytes[kXmmRegs][16];
};

// What the handler saw, and how many times it ran.
volatile int handled;
volatile uint32_t handler_mxcsr;
volatile uint16_t handler_fpu_cw;

// async-signal-safe: only reads and writes registers and globals.
void ClobberingHandler(int) {
  uint32_t mxcsr;
  uint16_t cw;
  asm volatile("stmxcsr %0\n fnstcw %1" : "=m"(mxcsr), "=m"(cw));
  handler_mxcsr = mxcsr;
  handler_fpu_cw = cw;

  // Overwrite every XMM register, MXCSR and the x87 control word.
  const uint32_t bad_mxcsr = 0x3f80;  // Round down.
  const uint16_t bad_cw = 0x077f;     // Round down.
  asm volatile(
      "pcmpeqd %%xmm0, %%xmm0\n"
      "movdqa %%xmm0, %%xmm1\n movdqa %%xmm0, %%xmm2\n"
      "movdqa %%xmm0, %%xmm3\n movdqa %%xmm0, %%xmm4\n"
      "movdqa %%xmm0, %%xmm5\n movdqa %%xmm0, %%xmm6\n"
      "movdqa %%xmm0, %%xmm7\n movdqa %%xmm0, %%xmm8\n"
      "movdqa %%xmm0, %%xmm9\n movdqa %%xmm0, %%xmm10\n"
      "movdqa %%xmm0, %%xmm11\n movdqa %%xmm0, %%xmm12\n"
      "movdqa %%xmm0, %%xmm13\n movdqa %%xmm0, %%xmm14\n"
      "movdqa %%xmm0, %%xmm15\n"
      "ldmxcsr %0\n"
      "fldcw %1\n"
      :
      : "m"(bad_mxcsr), "m"(bad_cw)
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",
        "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
  handled = handled + 1;
}

// Loads `in` into xmm0-15, sends SIGUSR1 to this thread with a raw tgkill
// (so the handler runs on the way out of the system call, with nothing in
// between), and stores xmm0-15 into `out`.
void RoundTripThroughSignal(const XmmState& in, XmmState* out) {
  long nr = SYS_tgkill;
  const long tgid = getpid();
  const long tid = syscall(SYS_gettid);
  const long sig = SIGUSR1;
  asm volatile(
      "movdqa 0x00(%[in]), %%xmm0\n movdqa 0x10(%[in]), %%xmm1\n"
      "movdqa 0x20(%[in]), %%xmm2\n movdqa 0x30(%[in]), %%xmm3\n"
      "movdqa 0x40(%[in]), %%xmm4\n movdqa 0x50(%[in]), %%xmm5\n"
      "movdqa 0x60(%[in]), %%xmm6\n movdqa 0x70(%[in]), %%xmm7\n"
      "movdqa 0x80(%[in]), %%xmm8\n movdqa 0x90(%[in]), %%xmm9\n"
      "movdqa 0xa0(%[in]), %%xmm10\n movdqa 0xb0(%[in]), %%xmm11\n"
      "movdqa 0xc0(%[in]), %%xmm12\n movdqa 0xd0(%[in]), %%xmm13\n"
      "movdqa 0xe0(%[in]), %%xmm14\n movdqa 0xf0(%[in]), %%xmm15\n"
      "syscall\n"
      "movdqa %%xmm0, 0x00(%[out])\n movdqa %%xmm1, 0x10(%[out])\n"
      "movdqa %%xmm2, 0x20(%[out])\n movdqa %%xmm3, 0x30(%[out])\n"
      "movdqa %%xmm4, 0x40(%[out])\n movdqa %%xmm5, 0x50(%[out])\n"
      "movdqa %%xmm6, 0x60(%[out])\n movdqa %%xmm7, 0x70(%[out])\n"
      "movdqa %%xmm8, 0x80(%[out])\n movdqa %%xmm9, 0x90(%[out])\n"
      "movdqa %%xmm10, 0xa0(%[out])\n movdqa %%xmm11, 0xb0(%[out])\n"
      "movdqa %%xmm12, 0xc0(%[out])\n movdqa %%xmm13, 0xd0(%[out])\n"
      "movdqa %%xmm14, 0xe0(%[out])\n movdqa %%xmm15, 0xf0(%[out])\n"
      : "+a"(nr)
      : [in] "r"(&in), [out] "r"(out), "D"(tgid), "S"(tid), "d"(sig)
      : "rcx", "r11", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5",
        "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13",
        "xmm14", "xmm15");
  EXPECT_EQ(nr, 0) << "tgkill";
}

class FpsigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    handled = 0;
    handler_mxcsr = 0;
    handler_fpu_cw = 0;
    struct sigaction act = {};
    act.sa_handler = ClobberingHandler;
    sigemptyset(&act.sa_mask);
    ASSERT_THAT(sigaction(SIGUSR1, &act, &old_), SyscallSucceeds());
  }
  void TearDown() override {
    EXPECT_THAT(sigaction(SIGUSR1, &old_, nullptr), SyscallSucceeds());
  }

 private:
  struct sigaction old_;
};

TEST_F(FpsigTest, XmmPreservedAcrossHandler) {
  XmmState in, out;
  for (int r = 0; r < kXmmRegs; r++) {
    for (int b = 0; b < 16; b++) in.bytes[r][b] = r * 16 + b + 1;
  }
  memset(&out, 0, sizeof(out));

  RoundTripThroughSignal(in, &out);

  ASSERT_EQ(handled, 1);
  for (int r = 0; r < kXmmRegs; r++) {
    EXPECT_EQ(memcmp(in.bytes[r], out.bytes[r], 16), 0) << "xmm" << r;
  }
}

// The control registers of the interrupted code come back too, and the
// handler itself starts with the defaults, whatever the interrupted code
// had set.
TEST_F(FpsigTest, ControlWordsPreservedAndResetInHandler) {
  uint32_t saved_mxcsr;
  uint16_t saved_cw;
  asm volatile("stmxcsr %0\n fnstcw %1" : "=m"(saved_mxcsr), "=m"(saved_cw));

  const uint32_t test_mxcsr = kTestMxcsr;
  const uint16_t test_cw = kTestFpuCw;
  asm volatile("ldmxcsr %0\n fldcw %1" ::"m"(test_mxcsr), "m"(test_cw));
  XmmState in = {}, out;
  RoundTripThroughSignal(in, &out);
  uint32_t after_mxcsr;
  uint16_t after_cw;
  asm volatile("stmxcsr %0\n fnstcw %1" : "=m"(after_mxcsr), "=m"(after_cw));
  asm volatile("ldmxcsr %0\n fldcw %1" ::"m"(saved_mxcsr), "m"(saved_cw));

  ASSERT_EQ(handled, 1);
  EXPECT_EQ(after_mxcsr, kTestMxcsr);
  EXPECT_EQ(after_cw, kTestFpuCw);
  EXPECT_EQ(handler_mxcsr, kDefaultMxcsr);
  EXPECT_EQ(handler_fpu_cw, kDefaultFpuCw);
}

// Many rounds with different values, to catch state leaking between
// deliveries.
TEST_F(FpsigTest, RepeatedDeliveries) {
  for (int round = 0; round < 50; round++) {
    XmmState in, out;
    for (int r = 0; r < kXmmRegs; r++) {
      for (int b = 0; b < 16; b++) in.bytes[r][b] = round * 7 + r * 3 + b;
    }
    RoundTripThroughSignal(in, &out);
    ASSERT_EQ(handled, round + 1);
    for (int r = 0; r < kXmmRegs; r++) {
      ASSERT_EQ(memcmp(in.bytes[r], out.bytes[r], 16), 0)
          << "xmm" << r << " in round " << round;
    }
  }
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
