// prctl(2): names, parent-death signal, dumpable, no_new_privs, child
// subreaper, keepcaps, timer slack, THP, timing, and unknown options.
// (The capability options are in capabilities.cc.)

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

std::string Name() {
  char name[17] = {};
  EXPECT_THAT(prctl(PR_GET_NAME, name), SyscallSucceeds());
  return name;
}

TEST(PrctlTest, NameIsPerThreadAndTruncated) {
  const std::string original = Name();
  std::thread t([] {
    ASSERT_THAT(prctl(PR_SET_NAME, "a-rather-long-thread-name"),
                SyscallSucceeds());
    // TASK_COMM_LEN is 16 with the terminator.
    EXPECT_EQ(Name(), "a-rather-long-t");
  });
  t.join();
  EXPECT_EQ(Name(), original);
  ASSERT_THAT(prctl(PR_SET_NAME, "renamed"), SyscallSucceeds());
  EXPECT_EQ(Name(), "renamed");
  ASSERT_THAT(prctl(PR_SET_NAME, original.c_str()), SyscallSucceeds());
  EXPECT_THAT(prctl(PR_SET_NAME, reinterpret_cast<char*>(8)),
              SyscallFailsWithErrno(EFAULT));
}

TEST(PrctlTest, ParentDeathSignal) {
  int sig = -1;
  ASSERT_THAT(prctl(PR_GET_PDEATHSIG, &sig), SyscallSucceeds());
  EXPECT_EQ(sig, 0);
  EXPECT_THAT(prctl(PR_SET_PDEATHSIG, 65), SyscallFailsWithErrno(EINVAL));
  ASSERT_THAT(prctl(PR_SET_PDEATHSIG, SIGUSR2), SyscallSucceeds());
  ASSERT_THAT(prctl(PR_GET_PDEATHSIG, &sig), SyscallSucceeds());
  EXPECT_EQ(sig, SIGUSR2);
  ASSERT_THAT(prctl(PR_SET_PDEATHSIG, 0), SyscallSucceeds());
  EXPECT_THAT(prctl(PR_GET_PDEATHSIG, nullptr), SyscallFailsWithErrno(EFAULT));
}

TEST(PrctlTest, Dumpable) {
  EXPECT_THAT(prctl(PR_GET_DUMPABLE), SyscallSucceedsWithValue(1));
  EXPECT_THAT(prctl(PR_SET_DUMPABLE, 2), SyscallFailsWithErrno(EINVAL));
  ASSERT_THAT(prctl(PR_SET_DUMPABLE, 0), SyscallSucceeds());
  EXPECT_THAT(prctl(PR_GET_DUMPABLE), SyscallSucceedsWithValue(0));
  ASSERT_THAT(prctl(PR_SET_DUMPABLE, 1), SyscallSucceeds());
  EXPECT_THAT(prctl(PR_GET_DUMPABLE), SyscallSucceedsWithValue(1));
}

TEST(PrctlTest, NoNewPrivsIsPerThreadAndSticky) {
  EXPECT_THAT(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0),
              SyscallSucceedsWithValue(0));
  EXPECT_THAT(prctl(PR_GET_NO_NEW_PRIVS, 1, 0, 0, 0),
              SyscallFailsWithErrno(EINVAL));
  std::thread t([] {
    EXPECT_THAT(prctl(PR_SET_NO_NEW_PRIVS, 0, 0, 0, 0),
                SyscallFailsWithErrno(EINVAL));
    EXPECT_THAT(prctl(PR_SET_NO_NEW_PRIVS, 1, 1, 0, 0),
                SyscallFailsWithErrno(EINVAL));
    ASSERT_THAT(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), SyscallSucceeds());
    EXPECT_THAT(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0),
                SyscallSucceedsWithValue(1));
  });
  t.join();
  EXPECT_THAT(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0),
              SyscallSucceedsWithValue(0));
}

TEST(PrctlTest, ChildSubreaper) {
  int v = -1;
  ASSERT_THAT(prctl(PR_GET_CHILD_SUBREAPER, &v), SyscallSucceeds());
  const int original = v;
  ASSERT_THAT(prctl(PR_SET_CHILD_SUBREAPER, 7), SyscallSucceeds());
  ASSERT_THAT(prctl(PR_GET_CHILD_SUBREAPER, &v), SyscallSucceeds());
  EXPECT_EQ(v, 1);
  ASSERT_THAT(prctl(PR_SET_CHILD_SUBREAPER, original), SyscallSucceeds());
}

TEST(PrctlTest, KeepCaps) {
  EXPECT_THAT(prctl(PR_GET_KEEPCAPS), SyscallSucceedsWithValue(0));
  EXPECT_THAT(prctl(PR_SET_KEEPCAPS, 2), SyscallFailsWithErrno(EINVAL));
  std::thread t([] {
    ASSERT_THAT(prctl(PR_SET_KEEPCAPS, 1), SyscallSucceeds());
    EXPECT_THAT(prctl(PR_GET_KEEPCAPS), SyscallSucceedsWithValue(1));
  });
  t.join();
  EXPECT_THAT(prctl(PR_GET_KEEPCAPS), SyscallSucceedsWithValue(0));
}

TEST(PrctlTest, TimerSlack) {
  const long original = prctl(PR_GET_TIMERSLACK);
  ASSERT_THAT(original, SyscallSucceeds());
  ASSERT_THAT(prctl(PR_SET_TIMERSLACK, 123456), SyscallSucceeds());
  EXPECT_THAT(prctl(PR_GET_TIMERSLACK), SyscallSucceedsWithValue(123456));
  // 0 restores the default.
  ASSERT_THAT(prctl(PR_SET_TIMERSLACK, 0), SyscallSucceeds());
  EXPECT_THAT(prctl(PR_GET_TIMERSLACK), SyscallSucceedsWithValue(original));
}

TEST(PrctlTest, ThpDisable) {
  EXPECT_THAT(prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0),
              SyscallSucceedsWithValue(0));
  EXPECT_THAT(prctl(PR_GET_THP_DISABLE, 1, 0, 0, 0),
              SyscallFailsWithErrno(EINVAL));
  ASSERT_THAT(prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0), SyscallSucceeds());
  EXPECT_THAT(prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0),
              SyscallSucceedsWithValue(1));
  ASSERT_THAT(prctl(PR_SET_THP_DISABLE, 0, 0, 0, 0), SyscallSucceeds());
}

TEST(PrctlTest, Timing) {
  EXPECT_THAT(prctl(PR_GET_TIMING), SyscallSucceedsWithValue(PR_TIMING_STATISTICAL));
  EXPECT_THAT(prctl(PR_SET_TIMING, PR_TIMING_STATISTICAL), SyscallSucceeds());
  EXPECT_THAT(prctl(PR_SET_TIMING, PR_TIMING_TIMESTAMP),
              SyscallFailsWithErrno(EINVAL));
}

TEST(PrctlTest, TidAddressIsTheClearChildTidWord) {
  int word = 0;
  std::thread t([&word] {
    int* old = nullptr;
    ASSERT_THAT(prctl(PR_GET_TID_ADDRESS, &old), SyscallSucceeds());
    // The thread library registered one for the join.
    EXPECT_NE(old, nullptr);
    ASSERT_THAT(syscall(SYS_set_tid_address, &word), SyscallSucceeds());
    int* now = nullptr;
    ASSERT_THAT(prctl(PR_GET_TID_ADDRESS, &now), SyscallSucceeds());
    EXPECT_EQ(now, &word);
    syscall(SYS_set_tid_address, old);
  });
  t.join();
}

TEST(PrctlTest, UnknownOptionIsEinval) {
  EXPECT_THAT(prctl(0x7fff0000, 0, 0, 0, 0), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(prctl(-1, 0, 0, 0, 0), SyscallFailsWithErrno(EINVAL));
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
