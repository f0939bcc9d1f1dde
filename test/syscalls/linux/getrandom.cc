// getrandom(2).

#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

using ::testing::AllOf;
using ::testing::Ge;
using ::testing::Gt;
using ::testing::Le;

#ifndef GRND_INSECURE
#define GRND_INSECURE 0x0004
#endif

// The raw call, so that libc cannot check or retry anything.
long GetRandom(void* buf, size_t len, unsigned int flags) {
  return syscall(SYS_getrandom, buf, len, flags);
}

bool AllZero(const std::vector<char>& v) {
  for (char c : v) {
    if (c != 0) return false;
  }
  return true;
}

TEST(GetrandomTest, ZeroLength) {
  char c = 0;
  EXPECT_THAT(GetRandom(&c, 0, 0), SyscallSucceedsWithValue(0));
  EXPECT_THAT(GetRandom(nullptr, 0, 0), SyscallSucceedsWithValue(0));
}

// Requests of up to 256 bytes from the initialised pool are never short
// (drivers/char/random.c).
TEST(GetrandomTest, SmallReadsAreFull) {
  for (size_t len : {1, 16, 32, 255, 256}) {
    std::vector<char> buf(len, 0);
    EXPECT_THAT(GetRandom(buf.data(), len, 0), SyscallSucceedsWithValue(len))
        << "len " << len;
  }
}

TEST(GetrandomTest, FillsTheBuffer) {
  std::vector<char> buf(256, 0);
  ASSERT_THAT(GetRandom(buf.data(), buf.size(), 0),
              SyscallSucceedsWithValue(buf.size()));
  // 256 random bytes are all zero with probability 2^-2048.
  EXPECT_FALSE(AllZero(buf));
}

TEST(GetrandomTest, WritesOnlyLenBytes) {
  std::vector<char> buf(64, 0);
  ASSERT_THAT(GetRandom(buf.data(), 32, 0), SyscallSucceedsWithValue(32));
  for (size_t i = 32; i < buf.size(); i++) {
    ASSERT_EQ(buf[i], 0) << "byte " << i << " past the request was written";
  }
}

TEST(GetrandomTest, CallsDiffer) {
  std::vector<char> a(32), b(32);
  ASSERT_THAT(GetRandom(a.data(), a.size(), 0), SyscallSucceedsWithValue(32));
  ASSERT_THAT(GetRandom(b.data(), b.size(), 0), SyscallSucceedsWithValue(32));
  EXPECT_NE(a, b);
}

// Large requests may be short but return something.
TEST(GetrandomTest, LargeRead) {
  const size_t len = 1 << 20;
  std::vector<char> buf(len);
  EXPECT_THAT(
      GetRandom(buf.data(), len, 0),
      SyscallSucceedsWithValue(AllOf(Gt(0), Le(static_cast<long>(len)))));
}

TEST(GetrandomTest, Nonblock) {
  char buf[32];
  EXPECT_THAT(GetRandom(buf, sizeof(buf), GRND_NONBLOCK),
              SyscallSucceedsWithValue(sizeof(buf)));
}

TEST(GetrandomTest, RandomFlag) {
  char buf[16];
  // With GRND_RANDOM the request may be short (older kernels drew from a
  // separate, smaller pool) but never fails once the pool is ready.
  EXPECT_THAT(GetRandom(buf, sizeof(buf), GRND_RANDOM | GRND_NONBLOCK),
              SyscallSucceedsWithValue(AllOf(Ge(1), Le(16))));
}

TEST(GetrandomTest, UnknownFlagsAreEinval) {
  char buf[16];
  EXPECT_THAT(GetRandom(buf, sizeof(buf), 0x8), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(GetRandom(buf, sizeof(buf), 0x80000000u),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(GetRandom(buf, sizeof(buf), ~0u), SyscallFailsWithErrno(EINVAL));
}

// GRND_INSECURE (Linux 5.6) never blocks and never fails for lack of entropy.
TEST(GetrandomTest, Insecure) {
  char buf[32];
  EXPECT_THAT(GetRandom(buf, sizeof(buf), GRND_INSECURE),
              SyscallSucceedsWithValue(sizeof(buf)));
}

// GRND_INSECURE cannot be combined with GRND_RANDOM.
TEST(GetrandomTest, InsecureWithRandomIsEinval) {
  char buf[16];
  EXPECT_THAT(GetRandom(buf, sizeof(buf), GRND_INSECURE | GRND_RANDOM),
              SyscallFailsWithErrno(EINVAL));
}

// Flags are checked before the buffer is looked at.
TEST(GetrandomTest, FlagsCheckedFirst) {
  EXPECT_THAT(GetRandom(reinterpret_cast<void*>(1), 16, 0x8),
              SyscallFailsWithErrno(EINVAL));
}

TEST(GetrandomTest, BadBufferIsEfault) {
  EXPECT_THAT(GetRandom(nullptr, 16, 0), SyscallFailsWithErrno(EFAULT));
  EXPECT_THAT(GetRandom(reinterpret_cast<void*>(-4096L), 16, 0),
              SyscallFailsWithErrno(EFAULT));
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
