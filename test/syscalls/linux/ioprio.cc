// I/O scheduling priorities: ioprio_set(2) and ioprio_get(2).

#include <errno.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/multiprocess_util.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

constexpr int kWhoProcess = 1;
constexpr int kWhoPgrp = 2;
constexpr int kWhoUser = 3;
constexpr int kClassRT = 1;
constexpr int kClassBE = 2;
constexpr int kClassIdle = 3;

constexpr long Prio(int cls, int level) { return (cls << 13) | level; }

long Get(int which, int who) { return syscall(SYS_ioprio_get, which, who); }
long Set(int which, int who, long prio) {
  return syscall(SYS_ioprio_set, which, who, prio);
}

TEST(IoprioTest, SetAndGetOwn) {
  EXPECT_EQ(InForkedChild([] {
    EXPECT_EQ(Get(kWhoProcess, 0), 0);
    for (long prio : {Prio(kClassBE, 7), Prio(kClassBE, 0), Prio(kClassIdle, 0),
                      Prio(kClassIdle, 5), Prio(kClassRT, 2),
                      // Hints live in bits 3 to 12.
                      Prio(kClassBE, 8 | 2)}) {
      ASSERT_THAT(Set(kWhoProcess, 0, prio), SyscallSucceeds()) << prio;
      EXPECT_EQ(Get(kWhoProcess, 0), prio);
      EXPECT_EQ(Get(kWhoProcess, getpid()), prio);
    }
    // Only the low 16 bits count.
    ASSERT_THAT(Set(kWhoProcess, 0, 0x10000), SyscallSucceeds());
    EXPECT_EQ(Get(kWhoProcess, 0), 0);
  }), 0);
}

TEST(IoprioTest, Invalid) {
  EXPECT_THAT(Set(kWhoProcess, 0, 1), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(Set(kWhoProcess, 0, Prio(4, 0)), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(Set(kWhoProcess, 0, Prio(7, 0)), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(Set(kWhoProcess, 0, -1), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(Set(4, 0, 0), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(Get(4, 0), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(Get(kWhoProcess, 0x3ffffff), SyscallFailsWithErrno(ESRCH));
  EXPECT_THAT(Get(kWhoPgrp, 0x3ffffff), SyscallFailsWithErrno(ESRCH));
}

TEST(IoprioTest, InheritedByForkAndBestOfTheGroup) {
  EXPECT_EQ(InForkedChild([] {
    // A process group of its own: the test's and its child's.
    ASSERT_THAT(setpgid(0, 0), SyscallSucceeds());
    ASSERT_THAT(Set(kWhoProcess, 0, Prio(kClassBE, 3)), SyscallSucceeds());
    int ready[2], done[2];
    ASSERT_THAT(pipe(ready), SyscallSucceeds());
    ASSERT_THAT(pipe(done), SyscallSucceeds());
    pid_t c = fork();
    ASSERT_THAT(c, SyscallSucceeds());
    if (c == 0) {
      char ok = Get(kWhoProcess, 0) == Prio(kClassBE, 3) ? 'y' : 'n';
      if (Set(kWhoProcess, 0, Prio(kClassBE, 6)) != 0) ok = 'n';
      write(ready[1], &ok, 1);
      char x;
      read(done[0], &x, 1);
      _exit(0);
    }
    char ok;
    ASSERT_THAT(read(ready[0], &ok, 1), SyscallSucceedsWithValue(1));
    EXPECT_EQ(ok, 'y');
    EXPECT_EQ(Get(kWhoProcess, c), Prio(kClassBE, 6));
    // The group's best (lowest) value.
    EXPECT_EQ(Get(kWhoPgrp, 0), Prio(kClassBE, 3));
    // Unset counts as best-effort at the level the nice value gives (4).
    ASSERT_THAT(Set(kWhoProcess, 0, 0), SyscallSucceeds());
    EXPECT_EQ(Get(kWhoPgrp, 0), Prio(kClassBE, 4));
    ASSERT_THAT(Set(kWhoProcess, 0, Prio(kClassIdle, 0)), SyscallSucceeds());
    EXPECT_EQ(Get(kWhoPgrp, getpgrp()), Prio(kClassBE, 6));
    // Setting a group sets every member.
    ASSERT_THAT(Set(kWhoPgrp, 0, Prio(kClassBE, 1)), SyscallSucceeds());
    EXPECT_EQ(Get(kWhoProcess, c), Prio(kClassBE, 1));
    EXPECT_EQ(Get(kWhoProcess, 0), Prio(kClassBE, 1));
    write(done[1], "x", 1);
    int status;
    ASSERT_THAT(waitpid(c, &status, 0), SyscallSucceedsWithValue(c));
  }), 0);
}

TEST(IoprioTest, UserIncludesSelf) {
  EXPECT_EQ(InForkedChild([] {
    ASSERT_THAT(Set(kWhoProcess, 0, Prio(kClassRT, 0)), SyscallSucceeds());
    // No task can have a better value than RT level 0.
    EXPECT_EQ(Get(kWhoUser, 0), Prio(kClassRT, 0));
  }), 0);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
