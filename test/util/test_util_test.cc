// Tests of the test-support library itself, natively.

#include "test/util/test_util.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/signal_util.h"

namespace pyvisor {
namespace testing {
namespace {

using ::testing::AnyOf;
using ::testing::Gt;
using ::testing::HasSubstr;
using ::testing::Not;

// Explain returns the explanation matcher m gives for value v.
template <typename M, typename T>
std::string Explain(const M& m, const T& v) {
  ::testing::StringMatchResultListener l;
  ::testing::ExplainMatchResult(m, v, &l);
  return l.str();
}

TEST(SyscallMatchersTest, SucceedsAndFails) {
  errno = EBADF;
  EXPECT_THAT(0, SyscallSucceeds());
  EXPECT_THAT(7L, SyscallSucceeds());
  EXPECT_THAT(-1, Not(SyscallSucceeds()));
  EXPECT_THAT(-1, SyscallFails());
  EXPECT_THAT(3, Not(SyscallFails()));
}

TEST(SyscallMatchersTest, SucceedsWithValue) {
  EXPECT_THAT(5, SyscallSucceedsWithValue(5));
  EXPECT_THAT(5L, SyscallSucceedsWithValue(5));
  EXPECT_THAT(static_cast<ssize_t>(5),
              SyscallSucceedsWithValue(sizeof(int) + 1));
  EXPECT_THAT(5, Not(SyscallSucceedsWithValue(4)));
  EXPECT_THAT(5, SyscallSucceedsWithValue(Gt(4)));
  errno = EINVAL;
  EXPECT_THAT(-1, Not(SyscallSucceedsWithValue(-1)));
}

TEST(SyscallMatchersTest, FailsWithErrno) {
  errno = EBADF;
  EXPECT_THAT(-1, SyscallFailsWithErrno(EBADF));
  EXPECT_THAT(-1, Not(SyscallFailsWithErrno(EINVAL)));
  EXPECT_THAT(-1, SyscallFailsWithErrno(AnyOf(EINVAL, EBADF)));
  EXPECT_THAT(0, Not(SyscallFailsWithErrno(EBADF)));
}

TEST(SyscallMatchersTest, Pointers) {
  errno = ENOMEM;
  EXPECT_THAT(MAP_FAILED, SyscallFailsWithErrno(ENOMEM));
  int x;
  EXPECT_THAT(&x, SyscallSucceeds());
  EXPECT_THAT(static_cast<void*>(nullptr), SyscallSucceeds());
  void* p = &x;
  EXPECT_THAT(p, SyscallSucceedsWithValue(p));
  EXPECT_THAT(p, Not(SyscallSucceedsWithValue(static_cast<void*>(nullptr))));
  EXPECT_THAT(::testing::DescribeMatcher<void*>(SyscallSucceedsWithValue(p)),
              HasSubstr("succeeds with a value that is equal to 0x"));
}

TEST(SyscallMatchersTest, ReadsErrnoOfTheCallUnderTest) {
  EXPECT_THAT(write(-1, "x", 1), SyscallFailsWithErrno(EBADF));
  EXPECT_THAT(close(-1), SyscallFailsWithErrno(EBADF));
}

TEST(SyscallMatchersTest, ExplanationsNameTheErrno) {
  errno = EBADF;
  EXPECT_THAT(Explain(SyscallSucceeds(), -1),
              HasSubstr("EBADF (Bad file descriptor)"));
  errno = EINVAL;
  EXPECT_THAT(Explain(SyscallFailsWithErrno(EBADF), -1),
              HasSubstr("EINVAL (Invalid argument)"));
  EXPECT_THAT(Explain(SyscallFailsWithErrno(EBADF), 0),
              HasSubstr("succeeded"));
  EXPECT_EQ(::testing::DescribeMatcher<int>(SyscallFailsWithErrno(EBADF)),
            "fails with an errno that is EBADF (Bad file descriptor)");
  EXPECT_EQ(::testing::DescribeMatcher<int>(SyscallSucceedsWithValue(3)),
            "succeeds with a value that is equal to 3");
}

TEST(SyscallMatchersTest, ErrnoName) {
  EXPECT_EQ(ErrnoName(ENOENT), "ENOENT");
  EXPECT_EQ(ErrnoName(100000), "100000");
}

TEST(PlatformTest, FollowsEnvironment) {
  const std::string saved = SandboxPlatform();
  ASSERT_EQ(unsetenv(kPlatformEnvVar), 0);
  EXPECT_FALSE(IsRunningOnSandbox());
  EXPECT_EQ(SandboxPlatform(), "");
  ASSERT_EQ(setenv(kPlatformEnvVar, "ptrace", 1), 0);
  EXPECT_TRUE(IsRunningOnSandbox());
  EXPECT_EQ(SandboxPlatform(), "ptrace");
  if (saved.empty()) {
    unsetenv(kPlatformEnvVar);
  } else {
    setenv(kPlatformEnvVar, saved.c_str(), 1);
  }
}

TEST(SkipIfTest, Skips) {
  SKIP_IF(true);
  FAIL() << "SKIP_IF(true) did not skip";
}

TEST(SkipIfTest, DoesNotSkip) {
  bool reached = false;
  [&] {
    SKIP_IF(false);
    reached = true;
  }();
  EXPECT_TRUE(reached);
}

TEST(FileDescriptorTest, ClosesAndReleases) {
  int fds[2];
  ASSERT_THAT(pipe(fds), SyscallSucceeds());
  {
    FileDescriptor r(fds[0]);
    FileDescriptor w(fds[1]);
    FileDescriptor moved(std::move(w));
    EXPECT_FALSE(w.valid());
    EXPECT_EQ(moved.get(), fds[1]);
    EXPECT_EQ(r.release(), fds[0]);
  }
  // fds[1] was closed by `moved`; fds[0] was released and is still open.
  EXPECT_THAT(close(fds[1]), SyscallFailsWithErrno(EBADF));
  EXPECT_THAT(close(fds[0]), SyscallSucceeds());
}

TEST(CatchFaultTest, CatchesAndRestores) {
  void* p = mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_THAT(p, SyscallSucceeds());
  auto fault = ReadFaults(p);
  ASSERT_TRUE(fault.has_value());
  EXPECT_EQ(fault->signo, SIGSEGV);
  EXPECT_EQ(fault->code, SEGV_ACCERR);
  EXPECT_EQ(fault->addr, p);
  // A second fault is caught too: the mask was restored by siglongjmp.
  EXPECT_TRUE(WriteFaults(p).has_value());
  ASSERT_THAT(mprotect(p, 4096, PROT_READ | PROT_WRITE), SyscallSucceeds());
  EXPECT_FALSE(WriteFaults(p).has_value());
  EXPECT_FALSE(ReadFaults(p).has_value());
  EXPECT_THAT(munmap(p, 4096), SyscallSucceeds());

  // The default action is back.
  struct sigaction act;
  ASSERT_THAT(sigaction(SIGSEGV, nullptr, &act), SyscallSucceeds());
  EXPECT_EQ(act.sa_handler, SIG_DFL);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
