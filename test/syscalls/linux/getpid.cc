// getpid(2), gettid(2), getppid(2).

#include <sys/syscall.h>
#include <unistd.h>

#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

using ::testing::Gt;
using ::testing::Ne;

TEST(GetpidTest, Positive) {
  EXPECT_THAT(syscall(SYS_getpid), SyscallSucceedsWithValue(Gt(0)));
}

TEST(GetpidTest, Stable) {
  const pid_t pid = getpid();
  for (int i = 0; i < 100; i++) {
    ASSERT_EQ(syscall(SYS_getpid), pid);
  }
}

TEST(GetpidTest, MatchesLibc) {
  EXPECT_EQ(syscall(SYS_getpid), getpid());
  EXPECT_EQ(syscall(SYS_gettid), gettid());
  EXPECT_EQ(syscall(SYS_getppid), getppid());
}

// The main thread's thread id is the thread group's id.
TEST(GettidTest, MainThreadIsThreadGroupLeader) {
  EXPECT_EQ(syscall(SYS_gettid), syscall(SYS_getpid));
}

TEST(GetppidTest, DiffersFromPid) {
  const pid_t ppid = syscall(SYS_getppid);
  EXPECT_THAT(ppid, SyscallSucceeds());
  EXPECT_NE(ppid, getpid());
}

// A PID namespace's init (pid 1) has no parent inside the namespace, and
// getppid returns 0 (kernel/sys.c takes the parent's pid in the caller's
// namespace, which does not exist there). Any other process has a parent.
TEST(GetppidTest, ZeroOnlyForNamespaceInit) {
  const pid_t ppid = syscall(SYS_getppid);
  if (getpid() == 1) {
    EXPECT_EQ(ppid, 0);
  } else {
    EXPECT_THAT(ppid, Gt(0));
  }
}

// Arguments are ignored.
TEST(GetpidTest, IgnoresArguments) {
  EXPECT_EQ(syscall(SYS_getpid, 1, 2, 3, 4, 5, 6), getpid());
  EXPECT_EQ(syscall(SYS_gettid, -1, -1), gettid());
}

TEST(GettidTest, OtherThreadHasOwnTidSamePid) {
  const pid_t pid = getpid();
  const pid_t main_tid = gettid();
  pid_t thread_pid = -1;
  pid_t thread_tid = -1;
  pid_t thread_ppid = -1;
  std::thread t([&] {
    thread_pid = syscall(SYS_getpid);
    thread_tid = syscall(SYS_gettid);
    thread_ppid = syscall(SYS_getppid);
  });
  t.join();
  EXPECT_EQ(thread_pid, pid);
  EXPECT_THAT(thread_tid, Gt(0));
  EXPECT_THAT(thread_tid, Ne(main_tid));
  EXPECT_EQ(thread_ppid, getppid());
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
