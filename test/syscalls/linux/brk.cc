// brk(2), through the raw system call: it returns the new break, or the
// unchanged old one when it cannot move it (libc's brk() hides that).
//
// libc's malloc also moves the break. Each test restores the break before it
// makes any assertion, so nothing in gtest allocates while the break is not
// where malloc left it.

#include <signal.h>
#include <string.h>
#include <sys/mman.h>
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

const uintptr_t kPage = sysconf(_SC_PAGESIZE);

uintptr_t Brk(uintptr_t addr) { return syscall(SYS_brk, addr); }

uintptr_t PageRoundUp(uintptr_t a) { return (a + kPage - 1) & ~(kPage - 1); }

TEST(BrkTest, QueryIsStable) {
  const uintptr_t cur = Brk(0);
  EXPECT_GT(cur, 0u);
  EXPECT_EQ(Brk(0), cur);
}

TEST(BrkTest, GrowZeroedWritableThenShrink) {
  const uintptr_t start = Brk(0);
  const uintptr_t want = start + 16 * kPage;
  const uintptr_t grown = Brk(want);

  // The new memory, from the first whole page above the old break, reads as
  // zero and can be written.
  bool zero = true;
  if (grown == want) {
    const char* p = reinterpret_cast<const char*>(PageRoundUp(start));
    for (; reinterpret_cast<uintptr_t>(p) < want; p++) {
      if (*p != 0) {
        zero = false;
        break;
      }
    }
    memset(reinterpret_cast<void*>(start), 0x11, want - start);
  }
  const uintptr_t shrunk = Brk(start);

  EXPECT_EQ(grown, want);
  EXPECT_TRUE(zero);
  EXPECT_EQ(shrunk, start);
  EXPECT_EQ(Brk(0), start);
}

TEST(BrkTest, ShrunkMemoryIsGone) {
  const uintptr_t start = Brk(0);
  const uintptr_t top = PageRoundUp(start);
  const uintptr_t grown = Brk(top + 4 * kPage);
  if (grown == top + 4 * kPage) {
    *reinterpret_cast<volatile char*>(top + kPage) = 1;
  }
  const uintptr_t shrunk = Brk(start);
  ASSERT_EQ(grown, top + 4 * kPage);
  ASSERT_EQ(shrunk, start);

  auto fault = ReadFaults(reinterpret_cast<void*>(top + kPage));
  ASSERT_TRUE(fault.has_value());
  EXPECT_EQ(fault->signo, SIGSEGV);
  EXPECT_EQ(fault->code, SEGV_MAPERR);
}

// Growing again after a shrink gives zeroed memory, not the old contents.
TEST(BrkTest, RegrowIsZeroed) {
  const uintptr_t start = Brk(0);
  const uintptr_t top = PageRoundUp(start);
  const uintptr_t end = top + 2 * kPage;
  bool zero = false;
  uintptr_t first = Brk(end);
  uintptr_t second = 0;
  if (first == end) {
    memset(reinterpret_cast<void*>(top), 0x22, 2 * kPage);
    Brk(start);
    second = Brk(end);
    if (second == end) {
      zero = *reinterpret_cast<volatile char*>(top) == 0 &&
             *reinterpret_cast<volatile char*>(end - 1) == 0;
    }
  }
  const uintptr_t restored = Brk(start);
  EXPECT_EQ(first, end);
  EXPECT_EQ(second, end);
  EXPECT_TRUE(zero);
  EXPECT_EQ(restored, start);
}

// A break that cannot be set leaves the break where it was and returns it.
TEST(BrkTest, ImpossibleRequestReturnsOldBreak) {
  const uintptr_t start = Brk(0);
  // Below the start of the data segment.
  EXPECT_EQ(Brk(1), start);
  EXPECT_EQ(Brk(kPage), start);
  // Into kernel space, and further than any limit allows.
  EXPECT_EQ(Brk(uintptr_t{1} << 63), start);
  EXPECT_EQ(Brk(start + (uintptr_t{1} << 46)), start);
  EXPECT_EQ(Brk(0), start);
}

// The break cannot grow over an existing mapping.
TEST(BrkTest, CannotGrowOverAMapping) {
  const uintptr_t start = Brk(0);
  const uintptr_t top = PageRoundUp(start);
  void* block =
      mmap(reinterpret_cast<void*>(top + 8 * kPage), kPage, PROT_READ,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  ASSERT_THAT(block, SyscallSucceeds());
  const uintptr_t got = Brk(top + 16 * kPage);
  if (got != start) Brk(start);
  EXPECT_EQ(got, start);
  EXPECT_THAT(munmap(block, kPage), SyscallSucceeds());
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
