// Page faults: the signal, si_code and si_addr an invalid access gets, lazy
// population of large mappings, and stack growth below MAP_GROWSDOWN
// mappings (arch/x86/mm/fault.c, mm/mmap.c expand_downwards).

#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/signal_util.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

const size_t kPage = sysconf(_SC_PAGESIZE);
// mm/mmap.c stack_guard_gap: 256 pages.
const size_t kGuardGap = 256 * kPage;

char* Offset(void* p, size_t bytes) { return static_cast<char*>(p) + bytes; }

void* MapAnon(size_t len, int prot, int flags = MAP_PRIVATE,
              void* addr = nullptr) {
  return mmap(addr, len, prot, flags | MAP_ANONYMOUS, -1, 0);
}

void ExpectFault(const std::optional<Fault>& f, int signo, int code,
                 void* addr) {
  ASSERT_TRUE(f.has_value()) << "no fault at " << addr;
  EXPECT_EQ(f->signo, signo);
  EXPECT_EQ(f->code, code) << "si_code";
  EXPECT_EQ(f->addr, addr) << "si_addr";
}

// Calls the code at p (a `ret` is written there first when it is writable).
std::optional<Fault> ExecFaults(void* p) {
  return CatchFault([p] { reinterpret_cast<void (*)()>(p)(); });
}

TEST(FaultTest, ReadOfUnmappedIsMaperr) {
  void* p = MapAnon(kPage, PROT_READ);
  ASSERT_THAT(p, SyscallSucceeds());
  ASSERT_THAT(munmap(p, kPage), SyscallSucceeds());
  ExpectFault(ReadFaults(Offset(p, 123)), SIGSEGV, SEGV_MAPERR,
              Offset(p, 123));
}

TEST(FaultTest, WriteToReadOnlyIsAccerr) {
  void* p = MapAnon(kPage, PROT_READ);
  ASSERT_THAT(p, SyscallSucceeds());
  // Touch it for read first, so the page is really mapped read-only.
  EXPECT_FALSE(ReadFaults(p).has_value());
  ExpectFault(WriteFaults(Offset(p, 8)), SIGSEGV, SEGV_ACCERR, Offset(p, 8));
  // And without touching it first.
  void* q = MapAnon(kPage, PROT_READ);
  ASSERT_THAT(q, SyscallSucceeds());
  ExpectFault(WriteFaults(q), SIGSEGV, SEGV_ACCERR, q);
  munmap(p, kPage);
  munmap(q, kPage);
}

TEST(FaultTest, ExecOfNonExecutableIsAccerr) {
  void* p = MapAnon(kPage, PROT_READ | PROT_WRITE);
  ASSERT_THAT(p, SyscallSucceeds());
  static_cast<unsigned char*>(p)[0] = 0xc3;  // ret
  ExpectFault(ExecFaults(p), SIGSEGV, SEGV_ACCERR, p);
  munmap(p, kPage);
}

TEST(FaultTest, ExecOfExecutableRuns) {
  void* p = MapAnon(kPage, PROT_READ | PROT_WRITE | PROT_EXEC);
  ASSERT_THAT(p, SyscallSucceeds());
  static_cast<unsigned char*>(p)[0] = 0xc3;  // ret
  EXPECT_FALSE(ExecFaults(p).has_value());
  // After mprotect to read+exec it still runs, and can no longer be written.
  ASSERT_THAT(mprotect(p, kPage, PROT_READ | PROT_EXEC), SyscallSucceeds());
  EXPECT_FALSE(ExecFaults(p).has_value());
  ExpectFault(WriteFaults(p), SIGSEGV, SEGV_ACCERR, p);
  munmap(p, kPage);
}

TEST(FaultTest, ExecOfUnmappedIsMaperr) {
  void* p = MapAnon(kPage, PROT_READ);
  ASSERT_THAT(p, SyscallSucceeds());
  ASSERT_THAT(munmap(p, kPage), SyscallSucceeds());
  ExpectFault(ExecFaults(p), SIGSEGV, SEGV_MAPERR, p);
}

// Every page of a large mapping is usable, and its contents stay put.
TEST(FaultTest, LargeMappingIsPopulatedOnTouch) {
  const size_t len = 256 << 20;
  void* p = MapAnon(len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE);
  ASSERT_THAT(p, SyscallSucceeds());
  for (size_t off = 0; off < len; off += 4 << 20) {
    *reinterpret_cast<volatile uint64_t*>(Offset(p, off)) = off + 1;
  }
  for (size_t off = 0; off < len; off += 4 << 20) {
    EXPECT_EQ(*reinterpret_cast<volatile uint64_t*>(Offset(p, off)), off + 1);
    // The rest of the page reads as zero.
    EXPECT_EQ(*reinterpret_cast<volatile uint64_t*>(Offset(p, off + 8)), 0u);
  }
  ASSERT_THAT(munmap(p, len), SyscallSucceeds());
}

// A write to memory that was mapped writable after being PROT_NONE works.
TEST(FaultTest, ProtNoneThenWritable) {
  const size_t len = 128 << 20;
  void* p = MapAnon(len, PROT_NONE, MAP_PRIVATE | MAP_NORESERVE);
  ASSERT_THAT(p, SyscallSucceeds());
  ExpectFault(ReadFaults(Offset(p, len / 2)), SIGSEGV, SEGV_ACCERR,
              Offset(p, len / 2));
  ASSERT_THAT(mprotect(Offset(p, len / 2), kPage, PROT_READ | PROT_WRITE),
              SyscallSucceeds());
  EXPECT_FALSE(WriteFaults(Offset(p, len / 2)).has_value());
  ExpectFault(ReadFaults(Offset(p, len / 2 + kPage)), SIGSEGV, SEGV_ACCERR,
              Offset(p, len / 2 + kPage));
  ASSERT_THAT(munmap(p, len), SyscallSucceeds());
}

// StackRegion reserves an address range with room for a MAP_GROWSDOWN
// mapping and its guard gap, and frees it afterwards.
class StackRegion {
 public:
  explicit StackRegion(size_t len) : len_(len) {
    base_ = MapAnon(len, PROT_NONE, MAP_PRIVATE | MAP_NORESERVE);
    EXPECT_THAT(base_, SyscallSucceeds());
    EXPECT_THAT(munmap(base_, len), SyscallSucceeds());
  }
  ~StackRegion() { munmap(base_, len_); }
  char* base() const { return static_cast<char*>(base_); }
  char* end() const { return base() + len_; }

 private:
  void* base_;
  size_t len_;
};

TEST(StackGrowthTest, TouchingBelowAGrowsdownMappingGrowsIt) {
  StackRegion region(kGuardGap + 64 * kPage);
  char* top = region.end() - kPage;
  void* p = MapAnon(kPage, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_GROWSDOWN | MAP_FIXED, top);
  ASSERT_THAT(p, SyscallSucceedsWithValue(top));
  // Several pages below the current start.
  char* below = top - 10 * kPage + 5;
  EXPECT_FALSE(WriteFaults(below).has_value());
  EXPECT_EQ(*below, 0);
  // The pages in between are now mapped too.
  EXPECT_FALSE(ReadFaults(top - 5 * kPage).has_value());
  // The stack can be shrunk by unmapping its lower part.
  ASSERT_THAT(munmap(top - 10 * kPage, 10 * kPage), SyscallSucceeds());
}

TEST(StackGrowthTest, GrowthStopsAtTheGuardGap) {
  StackRegion region(kGuardGap + 64 * kPage);
  // A mapping at the bottom, then a growsdown mapping 16 pages above the
  // guard gap's end.
  char* low = region.base();
  ASSERT_THAT(MapAnon(kPage, PROT_READ, MAP_PRIVATE | MAP_FIXED, low),
              SyscallSucceedsWithValue(low));
  char* top = low + kPage + kGuardGap + 16 * kPage;
  ASSERT_THAT(MapAnon(kPage, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_GROWSDOWN | MAP_FIXED, top),
              SyscallSucceedsWithValue(top));
  // Growing to the edge of the gap works; into the gap does not.
  EXPECT_FALSE(WriteFaults(low + kPage + kGuardGap).has_value());
  char* in_gap = low + kPage + kGuardGap - kPage;
  ExpectFault(WriteFaults(in_gap), SIGSEGV, SEGV_MAPERR, in_gap);
  munmap(low, kPage);
  munmap(low + kPage + kGuardGap, 17 * kPage);
}

// The stack cannot grow past RLIMIT_STACK.
TEST(StackGrowthTest, RlimitStackCapsGrowth) {
  StackRegion region(kGuardGap + 64 * kPage);
  struct rlimit old;
  ASSERT_THAT(getrlimit(RLIMIT_STACK, &old), SyscallSucceeds());
  char* top = region.end() - kPage;
  ASSERT_THAT(MapAnon(kPage, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_GROWSDOWN | MAP_FIXED, top),
              SyscallSucceedsWithValue(top));
  struct rlimit small = {8 * kPage, old.rlim_max};
  ASSERT_THAT(setrlimit(RLIMIT_STACK, &small), SyscallSucceeds());
  std::optional<Fault> ok = WriteFaults(top - 6 * kPage);
  std::optional<Fault> too_far = WriteFaults(top - 20 * kPage);
  ASSERT_THAT(setrlimit(RLIMIT_STACK, &old), SyscallSucceeds());
  EXPECT_FALSE(ok.has_value());
  ExpectFault(too_far, SIGSEGV, SEGV_MAPERR, top - 20 * kPage);
  munmap(top - 6 * kPage, 7 * kPage);
}

// mmap does not place new mappings in the guard gap below a growsdown one.
TEST(StackGrowthTest, MmapKeepsOutOfTheGuardGap) {
  StackRegion region(2 * kGuardGap + 16 * kPage);
  char* top = region.end() - kPage;
  ASSERT_THAT(MapAnon(kPage, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_GROWSDOWN | MAP_FIXED, top),
              SyscallSucceedsWithValue(top));
  // A hint right below the stack is not honoured.
  void* p = MapAnon(kPage, PROT_READ, MAP_PRIVATE, top - kPage);
  ASSERT_THAT(p, SyscallSucceeds());
  EXPECT_NE(p, top - kPage);
  munmap(p, kPage);
  munmap(top, kPage);
}

// PROT_GROWSDOWN extends an mprotect down to the start of the vma.
TEST(StackGrowthTest, MprotectGrowsdown) {
  StackRegion region(kGuardGap + 16 * kPage);
  char* base = region.end() - 4 * kPage;
  ASSERT_THAT(MapAnon(4 * kPage, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_GROWSDOWN | MAP_FIXED, base),
              SyscallSucceedsWithValue(base));
  ASSERT_THAT(mprotect(base + 3 * kPage, kPage, PROT_READ | PROT_GROWSDOWN),
              SyscallSucceeds());
  ExpectFault(WriteFaults(base), SIGSEGV, SEGV_ACCERR, base);
  munmap(base, 4 * kPage);

  void* plain = MapAnon(kPage, PROT_READ);
  ASSERT_THAT(plain, SyscallSucceeds());
  EXPECT_THAT(mprotect(plain, kPage, PROT_READ | PROT_GROWSDOWN),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(mprotect(plain, kPage, PROT_READ | PROT_GROWSUP),
              SyscallFailsWithErrno(EINVAL));
  munmap(plain, kPage);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
