// mremap(2): shrink, grow in place, move, MREMAP_FIXED, MREMAP_DONTUNMAP and
// the old-size-zero duplicate of a shared mapping (mm/mremap.c).

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

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

namespace pyvisor {
namespace testing {
namespace {

const size_t kPage = sysconf(_SC_PAGESIZE);

char* Map(size_t len, int prot = PROT_READ | PROT_WRITE,
          int flags = MAP_PRIVATE | MAP_ANONYMOUS, void* addr = nullptr) {
  void* p = mmap(addr, len, prot, flags, -1, 0);
  EXPECT_THAT(p, SyscallSucceeds());
  return static_cast<char*>(p);
}

char* Remap(void* old, size_t old_len, size_t new_len, int flags,
            void* new_addr = nullptr) {
  return static_cast<char*>(mremap(old, old_len, new_len, flags, new_addr));
}

void Fill(char* p, size_t len) {
  for (size_t i = 0; i < len; i += kPage) p[i] = static_cast<char>(i / kPage + 1);
}

bool Filled(const char* p, size_t len) {
  for (size_t i = 0; i < len; i += kPage) {
    if (p[i] != static_cast<char>(i / kPage + 1)) return false;
  }
  return true;
}

// Reserve returns a free range of len bytes (unmapped again).
char* Reserve(size_t len) {
  char* p = Map(len, PROT_NONE);
  EXPECT_THAT(munmap(p, len), SyscallSucceeds());
  return p;
}

TEST(MremapTest, ShrinkUnmapsTheTail) {
  char* p = Map(4 * kPage);
  Fill(p, 4 * kPage);
  ASSERT_EQ(Remap(p, 4 * kPage, 2 * kPage, 0), p);
  EXPECT_TRUE(Filled(p, 2 * kPage));
  std::optional<Fault> f = ReadFaults(p + 2 * kPage);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->code, SEGV_MAPERR);
  munmap(p, 2 * kPage);
}

TEST(MremapTest, GrowInPlace) {
  char* p = Reserve(8 * kPage);
  ASSERT_EQ(Map(2 * kPage, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, p),
            p);
  Fill(p, 2 * kPage);
  ASSERT_EQ(Remap(p, 2 * kPage, 6 * kPage, 0), p);
  EXPECT_TRUE(Filled(p, 2 * kPage));
  EXPECT_EQ(p[5 * kPage], 0);
  p[5 * kPage] = 1;
  munmap(p, 6 * kPage);
}

TEST(MremapTest, GrowWithoutRoomIsEnomemUnlessMaymove) {
  char* p = Reserve(4 * kPage);
  ASSERT_EQ(Map(2 * kPage, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, p),
            p);
  ASSERT_EQ(Map(kPage, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                p + 2 * kPage),
            p + 2 * kPage);
  Fill(p, 2 * kPage);
  EXPECT_EQ(Remap(p, 2 * kPage, 4 * kPage, 0), MAP_FAILED);
  EXPECT_EQ(errno, ENOMEM);

  char* q = Remap(p, 2 * kPage, 4 * kPage, MREMAP_MAYMOVE);
  ASSERT_NE(q, MAP_FAILED);
  EXPECT_NE(q, p);
  EXPECT_TRUE(Filled(q, 2 * kPage));
  // The old range is gone.
  std::optional<Fault> f = ReadFaults(p);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->code, SEGV_MAPERR);
  munmap(q, 4 * kPage);
  munmap(p + 2 * kPage, kPage);
}

TEST(MremapTest, Fixed) {
  char* p = Map(3 * kPage);
  Fill(p, 3 * kPage);
  char* target = Map(4 * kPage, PROT_READ);
  char* q = Remap(p, 3 * kPage, 3 * kPage, MREMAP_MAYMOVE | MREMAP_FIXED,
                  target);
  ASSERT_EQ(q, target);
  EXPECT_TRUE(Filled(q, 3 * kPage));
  // The part of the old target mapping past the new one survives.
  EXPECT_FALSE(ReadFaults(target + 3 * kPage).has_value());
  // The moved range is writable, as the source was.
  q[10] = 1;
  munmap(q, 4 * kPage);
}

TEST(MremapTest, FixedShrinking) {
  char* p = Map(4 * kPage);
  Fill(p, 4 * kPage);
  char* target = Reserve(2 * kPage);
  char* q = Remap(p, 4 * kPage, 2 * kPage, MREMAP_MAYMOVE | MREMAP_FIXED,
                  target);
  ASSERT_EQ(q, target);
  EXPECT_TRUE(Filled(q, 2 * kPage));
  EXPECT_TRUE(ReadFaults(p + 3 * kPage).has_value());
  munmap(q, 2 * kPage);
}

TEST(MremapTest, ArgumentErrors) {
  char* p = Map(2 * kPage);
  // Unknown flags, FIXED or DONTUNMAP without MAYMOVE, unaligned address.
  EXPECT_EQ(Remap(p, kPage, kPage, 8), MAP_FAILED);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(Remap(p, kPage, kPage, MREMAP_FIXED, p + 8 * kPage), MAP_FAILED);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(Remap(p, kPage, kPage, MREMAP_DONTUNMAP), MAP_FAILED);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(Remap(p + 1, kPage, kPage, 0), MAP_FAILED);
  EXPECT_EQ(errno, EINVAL);
  // A zero new size.
  EXPECT_EQ(Remap(p, kPage, 0, 0), MAP_FAILED);
  EXPECT_EQ(errno, EINVAL);
  // Overlapping source and destination.
  EXPECT_EQ(Remap(p, 2 * kPage, 2 * kPage, MREMAP_MAYMOVE | MREMAP_FIXED,
                  p + kPage),
            MAP_FAILED);
  EXPECT_EQ(errno, EINVAL);
  // An unaligned destination.
  EXPECT_EQ(Remap(p, kPage, kPage, MREMAP_MAYMOVE | MREMAP_FIXED,
                  p + 8 * kPage + 1),
            MAP_FAILED);
  EXPECT_EQ(errno, EINVAL);
  // DONTUNMAP needs equal sizes.
  EXPECT_EQ(Remap(p, kPage, 2 * kPage, MREMAP_MAYMOVE | MREMAP_DONTUNMAP),
            MAP_FAILED);
  EXPECT_EQ(errno, EINVAL);
  munmap(p, 2 * kPage);
}

TEST(MremapTest, UnmappedOrSpanningIsEfault) {
  char* p = Reserve(4 * kPage);
  EXPECT_EQ(Remap(p, kPage, 2 * kPage, MREMAP_MAYMOVE), MAP_FAILED);
  EXPECT_EQ(errno, EFAULT);
  // Two separate mappings side by side (different protections, so they
  // stay separate vmas): a range over both is not one mapping.
  ASSERT_EQ(Map(kPage, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, p),
            p);
  ASSERT_EQ(Map(kPage, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                p + kPage),
            p + kPage);
  EXPECT_EQ(Remap(p, 2 * kPage, 3 * kPage, MREMAP_MAYMOVE), MAP_FAILED);
  EXPECT_EQ(errno, EFAULT);
  munmap(p, 2 * kPage);
}

TEST(MremapTest, DontunmapLeavesAnEmptyMapping) {
  char* p = Map(2 * kPage);
  Fill(p, 2 * kPage);
  char* q = Remap(p, 2 * kPage, 2 * kPage, MREMAP_MAYMOVE | MREMAP_DONTUNMAP);
  ASSERT_NE(q, MAP_FAILED);
  EXPECT_NE(q, p);
  EXPECT_TRUE(Filled(q, 2 * kPage));
  // The old range is still mapped, and reads as fresh memory.
  EXPECT_FALSE(ReadFaults(p).has_value());
  EXPECT_EQ(p[0], 0);
  EXPECT_EQ(p[kPage], 0);
  munmap(p, 2 * kPage);
  munmap(q, 2 * kPage);
}

TEST(MremapTest, ZeroOldSizeDuplicatesASharedMapping) {
  char* p = Map(2 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
  p[0] = 'a';
  char* q = Remap(p, 0, 2 * kPage, MREMAP_MAYMOVE);
  ASSERT_NE(q, MAP_FAILED);
  EXPECT_NE(q, p);
  EXPECT_EQ(q[0], 'a');
  q[kPage] = 'b';
  EXPECT_EQ(p[kPage], 'b');
  // Both stay mapped.
  EXPECT_FALSE(ReadFaults(p).has_value());
  munmap(q, 2 * kPage);
  munmap(p, 2 * kPage);

  // Without MREMAP_MAYMOVE there is nowhere to put it.
  char* s = Map(kPage, PROT_READ, MAP_SHARED | MAP_ANONYMOUS);
  EXPECT_EQ(Remap(s, 0, kPage, 0), MAP_FAILED);
  EXPECT_EQ(errno, ENOMEM);
  munmap(s, kPage);
}

TEST(MremapTest, ZeroOldSizeOfAPrivateMappingIsEinval) {
  char* p = Map(kPage);
  EXPECT_EQ(Remap(p, 0, kPage, MREMAP_MAYMOVE), MAP_FAILED);
  EXPECT_EQ(errno, EINVAL);
  munmap(p, kPage);
}

// Growing shared anonymous memory adds pages past the end of its object,
// which fault with SIGBUS (the object's size was fixed by mmap).
TEST(MremapTest, GrownSharedAnonymousMemoryIsSigbus) {
  char* p = Map(kPage, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
  char* q = Remap(p, kPage, 2 * kPage, MREMAP_MAYMOVE);
  ASSERT_NE(q, MAP_FAILED);
  EXPECT_FALSE(WriteFaults(q).has_value());
  std::optional<Fault> f = ReadFaults(q + kPage);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->signo, SIGBUS);
  munmap(q, 2 * kPage);
}

// Moving a large mapping keeps its contents without touching every page.
TEST(MremapTest, MoveKeepsLargeContents) {
  const size_t len = 64 << 20;
  char* p = Map(len);
  for (size_t i = 0; i < len; i += 1 << 20) p[i] = static_cast<char>(i >> 20);
  char* q = Remap(p, len, 2 * len, MREMAP_MAYMOVE);
  ASSERT_NE(q, MAP_FAILED);
  for (size_t i = 0; i < len; i += 1 << 20) {
    ASSERT_EQ(q[i], static_cast<char>(i >> 20));
  }
  EXPECT_EQ(q[len + 5], 0);
  munmap(q, 2 * len);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
