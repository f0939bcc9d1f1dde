// uname(2).

#include <ctype.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

using ::testing::Gt;

// Every field of struct utsname is a NUL-terminated string within its array.
template <size_t N>
size_t TerminatedLength(const char (&field)[N]) {
  const void* nul = memchr(field, '\0', N);
  return nul == nullptr ? N : static_cast<const char*>(nul) - field;
}

TEST(UnameTest, Fields) {
  struct utsname u;
  memset(&u, 'x', sizeof(u));
  ASSERT_THAT(syscall(SYS_uname, &u), SyscallSucceedsWithValue(0));

  EXPECT_LT(TerminatedLength(u.sysname), sizeof(u.sysname));
  EXPECT_LT(TerminatedLength(u.nodename), sizeof(u.nodename));
  EXPECT_LT(TerminatedLength(u.release), sizeof(u.release));
  EXPECT_LT(TerminatedLength(u.version), sizeof(u.version));
  EXPECT_LT(TerminatedLength(u.machine), sizeof(u.machine));
  EXPECT_LT(TerminatedLength(u.domainname), sizeof(u.domainname));

  EXPECT_STREQ(u.sysname, "Linux");
  EXPECT_STREQ(u.machine, "x86_64");
}

// The release looks like a kernel version, "6.1.0-...": a digit first and at
// least major.minor.
TEST(UnameTest, ReleaseIsAVersion) {
  struct utsname u;
  ASSERT_THAT(uname(&u), SyscallSucceeds());
  ASSERT_THAT(strlen(u.release), Gt(2u));
  EXPECT_TRUE(isdigit(static_cast<unsigned char>(u.release[0]))) << u.release;
  EXPECT_NE(strchr(u.release, '.'), nullptr) << u.release;
  EXPECT_THAT(strlen(u.version), Gt(0u));
}

TEST(UnameTest, NodenameMatchesHostname) {
  struct utsname u;
  ASSERT_THAT(uname(&u), SyscallSucceeds());
  // glibc's gethostname is uname's nodename; the call still shows that the
  // two views agree.
  char host[HOST_NAME_MAX + 1] = {};
  ASSERT_THAT(gethostname(host, sizeof(host)), SyscallSucceeds());
  EXPECT_STREQ(u.nodename, host);
  EXPECT_THAT(strlen(u.nodename), Gt(0u));
}

// Linux copies out the whole struct, each field zero-padded to its end
// (kernel/sys.c copies a struct new_utsname whose strings are kept padded).
template <size_t N>
void ExpectZeroPadded(const char (&field)[N], const char* name) {
  for (size_t i = TerminatedLength(field); i < N; i++) {
    ASSERT_EQ(field[i], '\0') << name << " byte " << i;
  }
}

TEST(UnameTest, FieldsAreZeroPadded) {
  struct utsname u;
  memset(&u, 'x', sizeof(u));
  ASSERT_THAT(uname(&u), SyscallSucceeds());
  ExpectZeroPadded(u.sysname, "sysname");
  ExpectZeroPadded(u.nodename, "nodename");
  ExpectZeroPadded(u.release, "release");
  ExpectZeroPadded(u.version, "version");
  ExpectZeroPadded(u.machine, "machine");
  ExpectZeroPadded(u.domainname, "domainname");
}

TEST(UnameTest, Stable) {
  struct utsname a, b;
  memset(&a, 'a', sizeof(a));
  memset(&b, 'b', sizeof(b));
  ASSERT_THAT(uname(&a), SyscallSucceeds());
  ASSERT_THAT(uname(&b), SyscallSucceeds());
  EXPECT_EQ(memcmp(&a, &b, sizeof(a)), 0);
}

TEST(UnameTest, NullIsEfault) {
  EXPECT_THAT(syscall(SYS_uname, nullptr), SyscallFailsWithErrno(EFAULT));
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
