// sched_setattr(2) and sched_getattr(2).

#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
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

struct Attr {
  uint32_t size;
  uint32_t policy;
  uint64_t flags;
  int32_t nice;
  uint32_t priority;
  uint64_t runtime;
  uint64_t deadline;
  uint64_t period;
  uint32_t util_min;
  uint32_t util_max;
  char tail[8];
};
constexpr uint32_t kVer0 = 48;
constexpr uint32_t kVer1 = 56;
constexpr uint64_t kResetOnFork = 0x01;
constexpr uint64_t kKeepPolicy = 0x08;
constexpr uint64_t kKeepParams = 0x10;
constexpr uint64_t kUtilClampMin = 0x20;
#ifndef SCHED_DEADLINE
#define SCHED_DEADLINE 6
#endif

long SetAttr(Attr* a, pid_t pid = 0) {
  return syscall(SYS_sched_setattr, pid, a, 0);
}

Attr GetAttr() {
  Attr a;
  memset(&a, 0xff, sizeof(a));
  EXPECT_THAT(syscall(SYS_sched_getattr, 0, &a, sizeof(a), 0), SyscallSucceeds());
  return a;
}

Attr Fair(int nice) {
  Attr a = {};
  a.size = kVer0;
  a.policy = SCHED_OTHER;
  a.nice = nice;
  return a;
}

TEST(SchedAttrTest, GetDefault) {
  Attr a = GetAttr();
  EXPECT_EQ(a.size, kVer1);
  EXPECT_EQ(a.policy, static_cast<uint32_t>(SCHED_OTHER));
  EXPECT_EQ(a.flags, 0u);
  EXPECT_EQ(a.priority, 0u);
  EXPECT_EQ(a.deadline, 0u);
  EXPECT_EQ(a.period, 0u);
  // The tail past the struct the kernel knows is zeroed.
  EXPECT_EQ(a.tail[0], 0);
}

TEST(SchedAttrTest, GetCopiesOnlyTheSizeAsked) {
  Attr a;
  memset(&a, 0xee, sizeof(a));
  ASSERT_THAT(syscall(SYS_sched_getattr, 0, &a, kVer0, 0), SyscallSucceeds());
  EXPECT_EQ(a.size, kVer0);
  EXPECT_EQ(a.util_min, 0xeeeeeeeeu);
}

TEST(SchedAttrTest, GetChecks) {
  Attr a;
  EXPECT_THAT(syscall(SYS_sched_getattr, 0, &a, kVer0 - 1, 0),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_sched_getattr, 0, &a, 4097, 0),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_sched_getattr, 0, &a, kVer0, 1),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_sched_getattr, 0, nullptr, kVer0, 0),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_sched_getattr, -1, &a, kVer0, 0),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_sched_getattr, 0x3ffffff, &a, kVer0, 0),
              SyscallFailsWithErrno(ESRCH));
}

TEST(SchedAttrTest, NiceThroughAttr) {
  EXPECT_EQ(InForkedChild([] {
    Attr a = Fair(3);
    ASSERT_THAT(SetAttr(&a), SyscallSucceeds());
    EXPECT_EQ(GetAttr().nice, 3);
    EXPECT_EQ(getpriority(PRIO_PROCESS, 0), 3);
    // Out-of-range nice values are clamped; a size of 0 means VER0.
    a = Fair(-30);
    a.size = 0;
    ASSERT_THAT(SetAttr(&a), SyscallSucceeds());
    EXPECT_EQ(GetAttr().nice, -20);
  }), 0);
}

TEST(SchedAttrTest, RealTimePriority) {
  EXPECT_EQ(InForkedChild([] {
    Attr a = Fair(7);
    a.policy = SCHED_FIFO;
    a.priority = 5;
    ASSERT_THAT(SetAttr(&a), SyscallSucceeds());
    Attr got = GetAttr();
    EXPECT_EQ(got.policy, static_cast<uint32_t>(SCHED_FIFO));
    EXPECT_EQ(got.priority, 5u);
    // A real-time task reports no nice value or slice.
    EXPECT_EQ(got.nice, 0);
    EXPECT_EQ(got.runtime, 0u);
    EXPECT_EQ(sched_getscheduler(0), SCHED_FIFO);
    a.priority = 0;
    EXPECT_THAT(SetAttr(&a), SyscallFailsWithErrno(EINVAL));
    a = Fair(0);
    a.priority = 1;
    EXPECT_THAT(SetAttr(&a), SyscallFailsWithErrno(EINVAL));
  }), 0);
}

TEST(SchedAttrTest, SizeChecks) {
  Attr a = Fair(0);
  a.size = sizeof(Attr);
  a.tail[0] = 1;
  EXPECT_THAT(SetAttr(&a), SyscallFailsWithErrno(E2BIG));
  // The kernel's size is written back.
  EXPECT_EQ(a.size, kVer1);
  a.size = sizeof(Attr);
  a.tail[0] = 0;
  EXPECT_THAT(SetAttr(&a), SyscallSucceeds());
  a.size = kVer0 - 8;
  EXPECT_THAT(SetAttr(&a), SyscallFailsWithErrno(E2BIG));
  EXPECT_EQ(a.size, kVer1);
  a.size = 5000;
  EXPECT_THAT(SetAttr(&a), SyscallFailsWithErrno(E2BIG));
  // Utilisation clamps need the VER1 struct.
  a = Fair(0);
  a.flags = kUtilClampMin;
  EXPECT_THAT(SetAttr(&a), SyscallFailsWithErrno(EINVAL));
}

TEST(SchedAttrTest, OtherChecks) {
  Attr a = Fair(0);
  EXPECT_THAT(syscall(SYS_sched_setattr, 0, &a, 1), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_sched_setattr, 0, nullptr, 0),
              SyscallFailsWithErrno(EINVAL));
  a.flags = 0x100;
  EXPECT_THAT(SetAttr(&a), SyscallFailsWithErrno(EINVAL));
  a = Fair(0);
  a.policy = static_cast<uint32_t>(-1);
  EXPECT_THAT(SetAttr(&a), SyscallFailsWithErrno(EINVAL));
  a.policy = 4;
  EXPECT_THAT(SetAttr(&a), SyscallFailsWithErrno(EINVAL));
  a = Fair(0);
  EXPECT_THAT(SetAttr(&a, 0x3ffffff), SyscallFailsWithErrno(ESRCH));
}

TEST(SchedAttrTest, ResetOnForkIsReported) {
  EXPECT_EQ(InForkedChild([] {
    Attr a = Fair(0);
    a.flags = kResetOnFork;
    ASSERT_THAT(SetAttr(&a), SyscallSucceeds());
    EXPECT_EQ(GetAttr().flags, kResetOnFork);
  }), 0);
}

TEST(SchedAttrTest, Deadline) {
  if (geteuid() != 0) GTEST_SKIP() << "SCHED_DEADLINE needs CAP_SYS_NICE";
  EXPECT_EQ(InForkedChild([] {
    Attr a = {};
    a.size = kVer0;
    a.policy = SCHED_DEADLINE;
    a.runtime = 10'000'000;
    a.deadline = 30'000'000;
    a.period = 100'000'000;
    ASSERT_THAT(SetAttr(&a), SyscallSucceeds());
    Attr got = GetAttr();
    EXPECT_EQ(got.policy, static_cast<uint32_t>(SCHED_DEADLINE));
    EXPECT_EQ(got.runtime, 10'000'000u);
    EXPECT_EQ(got.deadline, 30'000'000u);
    EXPECT_EQ(got.period, 100'000'000u);
    // A deadline task may not fork.
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    EXPECT_THAT(pid, SyscallFailsWithErrno(EAGAIN));
    // Keeping policy and parameters changes nothing.
    Attr keep = Fair(0);
    keep.policy = SCHED_RR;
    keep.flags = kKeepPolicy | kKeepParams;
    ASSERT_THAT(SetAttr(&keep), SyscallSucceeds());
    EXPECT_EQ(GetAttr().policy, static_cast<uint32_t>(SCHED_DEADLINE));
    // Back to a fair policy.
    Attr fair = Fair(0);
    ASSERT_THAT(SetAttr(&fair), SyscallSucceeds());
  }), 0);
}

TEST(SchedAttrTest, DeadlineChecks) {
  Attr a = {};
  a.size = kVer0;
  a.policy = SCHED_DEADLINE;
  // Runtime under 1024 ns.
  a.runtime = 10;
  a.deadline = 30'000'000;
  EXPECT_THAT(SetAttr(&a), SyscallFailsWithErrno(EINVAL));
  // Deadline past the period.
  a.runtime = 10'000'000;
  a.deadline = 30'000'000;
  a.period = 20'000'000;
  EXPECT_THAT(SetAttr(&a), SyscallFailsWithErrno(EINVAL));
  // No deadline.
  a.deadline = 0;
  a.period = 0;
  EXPECT_THAT(SetAttr(&a), SyscallFailsWithErrno(EINVAL));
  // A period over the 4.19 s maximum.
  a.deadline = 30'000'000;
  a.period = 5'000'000'000;
  EXPECT_THAT(SetAttr(&a), SyscallFailsWithErrno(EINVAL));
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
