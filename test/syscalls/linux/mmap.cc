// mmap(2), munmap(2) and mprotect(2) on anonymous memory.
//
// Faults are caught in-process with a SIGSEGV handler (test/util's
// CatchFault), so these tests need no child process; the death tests, which
// fork, are skipped in the sandbox.

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

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

const size_t kPage = sysconf(_SC_PAGESIZE);

char* Offset(void* p, size_t bytes) { return static_cast<char*>(p) + bytes; }

// Mapping is an anonymous mapping unmapped on destruction (unless released).
class Mapping {
 public:
  Mapping(size_t len, int prot, int flags = MAP_PRIVATE, void* addr = nullptr)
      : len_(len) {
    addr_ = mmap(addr, len, prot, flags | MAP_ANONYMOUS, -1, 0);
    EXPECT_THAT(addr_, SyscallSucceeds());
  }
  ~Mapping() {
    if (addr_ != MAP_FAILED) {
      EXPECT_THAT(munmap(addr_, len_), SyscallSucceeds());
    }
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;

  char* ptr() const { return static_cast<char*>(addr_); }
  bool ok() const { return addr_ != MAP_FAILED; }
  void release() { addr_ = MAP_FAILED; }

 private:
  void* addr_;
  size_t len_;
};

bool AllBytesAre(const char* p, size_t n, char c) {
  for (size_t i = 0; i < n; i++) {
    if (p[i] != c) return false;
  }
  return true;
}

// ExpectFault checks that f is a SIGSEGV at addr with the given si_code.
void ExpectFault(const std::optional<Fault>& f, void* addr, int code) {
  ASSERT_TRUE(f.has_value()) << "no fault at " << addr;
  EXPECT_EQ(f->signo, SIGSEGV);
  EXPECT_EQ(f->code, code) << "si_code";
  EXPECT_EQ(f->addr, addr) << "si_addr";
}

TEST(MmapTest, AnonymousIsZeroedAndWritable) {
  const size_t len = 4 * kPage;
  Mapping m(len, PROT_READ | PROT_WRITE);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(m.ptr()) % kPage, 0u);
  EXPECT_TRUE(AllBytesAre(m.ptr(), len, 0));
  memset(m.ptr(), 0x5a, len);
  EXPECT_TRUE(AllBytesAre(m.ptr(), len, 0x5a));
}

// The length is rounded up to whole pages.
TEST(MmapTest, LengthRoundedUp) {
  Mapping m(1, PROT_READ | PROT_WRITE);
  ASSERT_TRUE(m.ok());
  EXPECT_FALSE(WriteFaults(Offset(m.ptr(), kPage - 1)).has_value());
}

TEST(MmapTest, SharedAnonymous) {
  Mapping m(2 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED);
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(AllBytesAre(m.ptr(), 2 * kPage, 0));
  memset(m.ptr(), 7, 2 * kPage);
  EXPECT_TRUE(AllBytesAre(m.ptr(), 2 * kPage, 7));
}

TEST(MmapTest, ReadOnlyWriteFaults) {
  Mapping m(kPage, PROT_READ);
  ASSERT_TRUE(m.ok());
  EXPECT_FALSE(ReadFaults(m.ptr()).has_value());
  ExpectFault(WriteFaults(m.ptr()), m.ptr(), SEGV_ACCERR);
}

TEST(MmapTest, ProtNoneFaults) {
  Mapping m(kPage, PROT_NONE);
  ASSERT_TRUE(m.ok());
  ExpectFault(ReadFaults(m.ptr()), m.ptr(), SEGV_ACCERR);
  ExpectFault(WriteFaults(Offset(m.ptr(), 100)), Offset(m.ptr(), 100),
              SEGV_ACCERR);
}

TEST(MmapTest, AccessAfterMunmapFaults) {
  Mapping m(2 * kPage, PROT_READ | PROT_WRITE);
  ASSERT_TRUE(m.ok());
  m.ptr()[0] = 1;
  ASSERT_THAT(munmap(m.ptr(), 2 * kPage), SyscallSucceeds());
  char* p = m.ptr();
  m.release();
  ExpectFault(ReadFaults(p), p, SEGV_MAPERR);
  ExpectFault(WriteFaults(Offset(p, kPage + 8)), Offset(p, kPage + 8),
              SEGV_MAPERR);
}

TEST(MmapTest, FixedReplacesExistingPages) {
  Mapping m(2 * kPage, PROT_READ | PROT_WRITE);
  ASSERT_TRUE(m.ok());
  memset(m.ptr(), 0xaa, 2 * kPage);

  char* second = Offset(m.ptr(), kPage);
  void* p = mmap(second, kPage, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  ASSERT_THAT(p, SyscallSucceedsWithValue(static_cast<void*>(second)));
  EXPECT_TRUE(AllBytesAre(second, kPage, 0)) << "the new page is not zero";
  EXPECT_TRUE(AllBytesAre(m.ptr(), kPage, static_cast<char>(0xaa)))
      << "the first page was changed";
}

TEST(MmapTest, FixedCanChangeProtection) {
  Mapping m(2 * kPage, PROT_READ | PROT_WRITE);
  ASSERT_TRUE(m.ok());
  ASSERT_THAT(mmap(m.ptr(), kPage, PROT_READ,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0),
              SyscallSucceeds());
  ExpectFault(WriteFaults(m.ptr()), m.ptr(), SEGV_ACCERR);
  EXPECT_FALSE(WriteFaults(Offset(m.ptr(), kPage)).has_value());
}

TEST(MmapTest, FixedNoreplaceOverExistingIsEexist) {
  Mapping m(2 * kPage, PROT_READ | PROT_WRITE);
  ASSERT_TRUE(m.ok());
  m.ptr()[kPage] = 3;
  // Overlapping only the second page is enough.
  EXPECT_THAT(mmap(Offset(m.ptr(), kPage), 2 * kPage, PROT_READ,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0),
              SyscallFailsWithErrno(EEXIST));
  // The existing page is untouched.
  EXPECT_EQ(m.ptr()[kPage], 3);
}

TEST(MmapTest, FixedNoreplaceOnFreeRange) {
  // Find a free range by mapping and unmapping it.
  void* hole = mmap(nullptr, 2 * kPage, PROT_NONE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_THAT(hole, SyscallSucceeds());
  ASSERT_THAT(munmap(hole, 2 * kPage), SyscallSucceeds());

  void* p = mmap(hole, 2 * kPage, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  ASSERT_THAT(p, SyscallSucceedsWithValue(hole));
  static_cast<char*>(p)[0] = 1;
  EXPECT_THAT(munmap(p, 2 * kPage), SyscallSucceeds());
}

// Without MAP_FIXED an occupied address is only a hint.
TEST(MmapTest, OccupiedHintIsIgnored) {
  Mapping m(kPage, PROT_READ | PROT_WRITE);
  ASSERT_TRUE(m.ok());
  Mapping other(kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE, m.ptr());
  ASSERT_TRUE(other.ok());
  EXPECT_NE(other.ptr(), m.ptr());
}

TEST(MmapTest, ZeroLengthIsEinval) {
  EXPECT_THAT(mmap(nullptr, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              SyscallFailsWithErrno(EINVAL));
}

TEST(MmapTest, FixedUnalignedIsEinval) {
  Mapping m(2 * kPage, PROT_READ);
  ASSERT_TRUE(m.ok());
  EXPECT_THAT(mmap(Offset(m.ptr(), 1), kPage, PROT_READ,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0),
              SyscallFailsWithErrno(EINVAL));
}

// One of MAP_SHARED and MAP_PRIVATE is required; an anonymous mapping cannot
// be MAP_SHARED_VALIDATE.
TEST(MmapTest, BadMappingTypeIsEinval) {
  EXPECT_THAT(mmap(nullptr, kPage, PROT_READ, MAP_ANONYMOUS, -1, 0),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(mmap(nullptr, kPage, PROT_READ,
                   MAP_SHARED_VALIDATE | MAP_ANONYMOUS, -1, 0),
              SyscallFailsWithErrno(EINVAL));
}

// The offset must be page-aligned even for anonymous memory
// (arch/x86/kernel/sys_x86_64.c).
TEST(MmapTest, UnalignedOffsetIsEinval) {
  EXPECT_THAT(mmap(nullptr, kPage, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1,
                   1),
              SyscallFailsWithErrno(EINVAL));
}

TEST(MmapTest, HugeLengthIsEnomem) {
  EXPECT_THAT(mmap(nullptr, 1ULL << 62, PROT_READ,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0),
              SyscallFailsWithErrno(ENOMEM));
  // A length that rounds up past the end of the address space.
  EXPECT_THAT(mmap(nullptr, static_cast<size_t>(-1), PROT_READ,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              SyscallFailsWithErrno(ENOMEM));
}

TEST(MmapTest, FileMappingOfBadFdIsEbadf) {
  EXPECT_THAT(mmap(nullptr, kPage, PROT_READ, MAP_PRIVATE, -1, 0),
              SyscallFailsWithErrno(EBADF));
}

TEST(MmapTest, HintIsHonouredWhenFree) {
  void* hole = mmap(nullptr, 4 * kPage, PROT_NONE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_THAT(hole, SyscallSucceeds());
  ASSERT_THAT(munmap(hole, 4 * kPage), SyscallSucceeds());
  Mapping m(kPage, PROT_READ, MAP_PRIVATE, Offset(hole, kPage));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m.ptr(), Offset(hole, kPage));
}

// Without a hint, mappings are placed top-down: a new one goes below the
// previous one when there is room there.
TEST(MmapTest, TopDownPlacement) {
  Mapping a(kPage, PROT_READ);
  Mapping b(kPage, PROT_READ);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_LT(b.ptr(), a.ptr());
}

TEST(MmapTest, Map32bitIsBelow2GiB) {
  Mapping m(kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_32BIT);
  ASSERT_TRUE(m.ok());
  EXPECT_LT(reinterpret_cast<uintptr_t>(m.ptr()) + kPage, 1ULL << 31);
  m.ptr()[0] = 1;
}

TEST(MmapTest, PopulateNoreserveStackFlags) {
  Mapping pop(4 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_POPULATE);
  ASSERT_TRUE(pop.ok());
  unsigned char vec[4];
  ASSERT_THAT(mincore(pop.ptr(), 4 * kPage, vec), SyscallSucceeds());
  for (unsigned char v : vec) EXPECT_EQ(v & 1, 1);
  EXPECT_TRUE(AllBytesAre(pop.ptr(), 4 * kPage, 0));

  Mapping stack(4 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_STACK);
  ASSERT_TRUE(stack.ok());
  stack.ptr()[0] = 1;

  // MAP_NORESERVE lets a mapping be larger than memory; only what is
  // touched costs anything.
  const size_t huge = 1ULL << 44;
  void* p = mmap(nullptr, huge, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  ASSERT_THAT(p, SyscallSucceeds());
  Offset(p, huge / 2)[0] = 1;
  Offset(p, huge - 1)[0] = 1;
  EXPECT_THAT(munmap(p, huge), SyscallSucceeds());
}

// Without MAP_NORESERVE a writable private mapping larger than memory is
// refused (heuristic overcommit, mm/util.c __vm_enough_memory).
TEST(MmapTest, OvercommitRefusesHugeWritableMappings) {
  const size_t huge = 1ULL << 46;
  EXPECT_THAT(mmap(nullptr, huge, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              SyscallFailsWithErrno(ENOMEM));
  // Read-only mappings commit nothing.
  void* p = mmap(nullptr, huge, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_THAT(p, SyscallSucceeds());
  EXPECT_THAT(munmap(p, huge), SyscallSucceeds());
}

// A MAP_GROWSDOWN mapping can be placed like any other.
TEST(MmapTest, Growsdown) {
  Mapping m(4 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_GROWSDOWN);
  ASSERT_TRUE(m.ok());
  m.ptr()[0] = 1;
  EXPECT_THAT(mmap(nullptr, kPage, PROT_READ,
                   MAP_SHARED | MAP_ANONYMOUS | MAP_GROWSDOWN, -1, 0),
              SyscallFailsWithErrno(EINVAL));
}

TEST(MmapTest, SharedAnonymousBeyondItsLengthAfterFixedRemap) {
  Mapping m(2 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED);
  ASSERT_TRUE(m.ok());
  m.ptr()[kPage] = 4;
  // Changing the protection of half keeps the contents of both halves.
  ASSERT_THAT(mprotect(m.ptr(), kPage, PROT_READ), SyscallSucceeds());
  EXPECT_EQ(m.ptr()[kPage], 4);
  ExpectFault(WriteFaults(m.ptr()), m.ptr(), SEGV_ACCERR);
}

TEST(MmapDeathTest, UnhandledFaultKills) {
  void* p = mmap(nullptr, kPage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_THAT(p, SyscallSucceeds());
  EXPECT_EXIT(*static_cast<volatile char*>(p) = 1,
              ::testing::KilledBySignal(SIGSEGV), "");
  EXPECT_THAT(munmap(p, kPage), SyscallSucceeds());
}

TEST(MunmapTest, Partial) {
  Mapping m(3 * kPage, PROT_READ | PROT_WRITE);
  ASSERT_TRUE(m.ok());
  char* middle = Offset(m.ptr(), kPage);
  ASSERT_THAT(munmap(middle, kPage), SyscallSucceeds());
  EXPECT_FALSE(WriteFaults(m.ptr()).has_value());
  ExpectFault(ReadFaults(middle), middle, SEGV_MAPERR);
  EXPECT_FALSE(WriteFaults(Offset(m.ptr(), 2 * kPage)).has_value());
  // Unmapping the hole again (inside the whole range) is fine.
}

// Unmapping a range with nothing in it succeeds.
TEST(MunmapTest, UnmappedRangeSucceeds) {
  void* hole = mmap(nullptr, kPage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
                    0);
  ASSERT_THAT(hole, SyscallSucceeds());
  ASSERT_THAT(munmap(hole, kPage), SyscallSucceeds());
  EXPECT_THAT(munmap(hole, kPage), SyscallSucceeds());
}

TEST(MunmapTest, UnalignedIsEinval) {
  Mapping m(2 * kPage, PROT_READ);
  ASSERT_TRUE(m.ok());
  EXPECT_THAT(munmap(Offset(m.ptr(), 1), kPage), SyscallFailsWithErrno(EINVAL));
}

TEST(MunmapTest, ZeroLengthIsEinval) {
  Mapping m(kPage, PROT_READ);
  ASSERT_TRUE(m.ok());
  EXPECT_THAT(munmap(m.ptr(), 0), SyscallFailsWithErrno(EINVAL));
}

// A range reaching past the end of the user address space.
TEST(MunmapTest, RangeBeyondUserSpaceIsEinval) {
  EXPECT_THAT(munmap(reinterpret_cast<void*>(0x7ffffffff000ULL), 2 * kPage),
              SyscallFailsWithErrno(EINVAL));
}

TEST(MprotectTest, NoneThenBack) {
  Mapping m(kPage, PROT_READ | PROT_WRITE);
  ASSERT_TRUE(m.ok());
  memset(m.ptr(), 9, kPage);

  ASSERT_THAT(mprotect(m.ptr(), kPage, PROT_NONE), SyscallSucceeds());
  ExpectFault(ReadFaults(m.ptr()), m.ptr(), SEGV_ACCERR);

  // The contents survive.
  ASSERT_THAT(mprotect(m.ptr(), kPage, PROT_READ), SyscallSucceeds());
  EXPECT_TRUE(AllBytesAre(m.ptr(), kPage, 9));
  ExpectFault(WriteFaults(m.ptr()), m.ptr(), SEGV_ACCERR);

  ASSERT_THAT(mprotect(m.ptr(), kPage, PROT_READ | PROT_WRITE),
              SyscallSucceeds());
  EXPECT_FALSE(WriteFaults(m.ptr()).has_value());
}

TEST(MprotectTest, MiddleOfAMapping) {
  Mapping m(3 * kPage, PROT_READ | PROT_WRITE);
  ASSERT_TRUE(m.ok());
  char* middle = Offset(m.ptr(), kPage);
  ASSERT_THAT(mprotect(middle, kPage, PROT_NONE), SyscallSucceeds());
  EXPECT_FALSE(WriteFaults(m.ptr()).has_value());
  ExpectFault(WriteFaults(middle), middle, SEGV_ACCERR);
  EXPECT_FALSE(WriteFaults(Offset(m.ptr(), 2 * kPage)).has_value());
}

// Like mmap, the length is rounded up to whole pages; a zero length does
// nothing and succeeds.
TEST(MprotectTest, Lengths) {
  Mapping m(2 * kPage, PROT_READ | PROT_WRITE);
  ASSERT_TRUE(m.ok());
  EXPECT_THAT(mprotect(m.ptr(), 0, PROT_NONE), SyscallSucceeds());
  EXPECT_FALSE(WriteFaults(m.ptr()).has_value());
  ASSERT_THAT(mprotect(m.ptr(), 1, PROT_READ), SyscallSucceeds());
  ExpectFault(WriteFaults(Offset(m.ptr(), kPage - 1)),
              Offset(m.ptr(), kPage - 1), SEGV_ACCERR);
  EXPECT_FALSE(WriteFaults(Offset(m.ptr(), kPage)).has_value());
}

TEST(MprotectTest, UnalignedIsEinval) {
  Mapping m(kPage, PROT_READ);
  ASSERT_TRUE(m.ok());
  EXPECT_THAT(mprotect(Offset(m.ptr(), 1), kPage, PROT_READ),
              SyscallFailsWithErrno(EINVAL));
}

TEST(MprotectTest, UnknownProtIsEinval) {
  Mapping m(kPage, PROT_READ);
  ASSERT_TRUE(m.ok());
  EXPECT_THAT(mprotect(m.ptr(), kPage, 0x100), SyscallFailsWithErrno(EINVAL));
}

TEST(MprotectTest, UnmappedIsEnomem) {
  void* hole = mmap(nullptr, kPage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
                    0);
  ASSERT_THAT(hole, SyscallSucceeds());
  ASSERT_THAT(munmap(hole, kPage), SyscallSucceeds());
  EXPECT_THAT(mprotect(hole, kPage, PROT_READ), SyscallFailsWithErrno(ENOMEM));
}

// A range that runs from a mapping into a hole fails with ENOMEM.
TEST(MprotectTest, PartlyUnmappedIsEnomem) {
  Mapping m(2 * kPage, PROT_READ | PROT_WRITE);
  ASSERT_TRUE(m.ok());
  ASSERT_THAT(munmap(Offset(m.ptr(), kPage), kPage), SyscallSucceeds());
  EXPECT_THAT(mprotect(m.ptr(), 2 * kPage, PROT_READ),
              SyscallFailsWithErrno(ENOMEM));
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
