// sched_yield(2), CPU affinity and getcpu(2), policies and priorities
// (sched_setscheduler(2) and friends), sched_rr_get_interval(2),
// getpriority(2) and setpriority(2).

#include <errno.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

TEST(SchedTest, Yield) { EXPECT_THAT(syscall(SYS_sched_yield), SyscallSucceeds()); }

TEST(AffinityTest, GetReturnsTheMaskSize) {
  cpu_set_t set;
  CPU_ZERO(&set);
  const long n = syscall(SYS_sched_getaffinity, 0, sizeof(set), &set);
  ASSERT_THAT(n, SyscallSucceeds());
  EXPECT_GE(n, 8);
  EXPECT_EQ(n % 8, 0);
  EXPECT_LE(n, static_cast<long>(sizeof(set)));
  EXPECT_GE(CPU_COUNT(&set), 1);
  // The thread may run only on CPUs the system has.
  const long online = sysconf(_SC_NPROCESSORS_CONF);
  for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
    if (CPU_ISSET(cpu, &set)) {
      EXPECT_LT(cpu, online);
    }
  }
}

TEST(AffinityTest, GetChecks) {
  cpu_set_t set;
  // Not a whole number of longs.
  EXPECT_THAT(syscall(SYS_sched_getaffinity, 0, 7, &set),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_sched_getaffinity, 0, 0, &set),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_sched_getaffinity, 0x3fffff0, sizeof(set), &set),
              SyscallFailsWithErrno(ESRCH));
  EXPECT_THAT(syscall(SYS_sched_getaffinity, 0, sizeof(set), nullptr),
              SyscallFailsWithErrno(EFAULT));
}

TEST(AffinityTest, SetOneCpuThenGetcpuStaysThere) {
  std::thread t([] {
    cpu_set_t set;
    ASSERT_THAT(sched_getaffinity(0, sizeof(set), &set), SyscallSucceeds());
    int first = -1;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
      if (CPU_ISSET(cpu, &set)) {
        first = cpu;
        break;
      }
    }
    ASSERT_GE(first, 0);
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    ASSERT_THAT(syscall(SYS_sched_setaffinity, 0, sizeof(one), &one),
                SyscallSucceeds());
    cpu_set_t got;
    CPU_ZERO(&got);
    ASSERT_THAT(syscall(SYS_sched_getaffinity, 0, sizeof(got), &got),
                SyscallSucceeds());
    EXPECT_TRUE(CPU_EQUAL(&got, &one));
    unsigned cpu = 99, node = 99;
    ASSERT_THAT(syscall(SYS_getcpu, &cpu, &node, nullptr), SyscallSucceeds());
    EXPECT_EQ(cpu, static_cast<unsigned>(first));
    EXPECT_EQ(node, 0u);
  });
  t.join();
}

TEST(AffinityTest, SetChecks) {
  cpu_set_t none;
  CPU_ZERO(&none);
  EXPECT_THAT(syscall(SYS_sched_setaffinity, 0, sizeof(none), &none),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_sched_setaffinity, 0, sizeof(none), nullptr),
              SyscallFailsWithErrno(EFAULT));
  cpu_set_t set;
  ASSERT_THAT(sched_getaffinity(0, sizeof(set), &set), SyscallSucceeds());
  EXPECT_THAT(syscall(SYS_sched_setaffinity, 0x3fffff0, sizeof(set), &set),
              SyscallFailsWithErrno(ESRCH));
}

TEST(GetcpuTest, NullPointersAreFine) {
  EXPECT_THAT(syscall(SYS_getcpu, nullptr, nullptr, nullptr), SyscallSucceeds());
  unsigned cpu = 12345;
  ASSERT_THAT(syscall(SYS_getcpu, &cpu, nullptr, nullptr), SyscallSucceeds());
  EXPECT_LT(cpu, static_cast<unsigned>(sysconf(_SC_NPROCESSORS_CONF)));
}

TEST(SchedulerTest, DefaultsAreSchedOther) {
  EXPECT_THAT(syscall(SYS_sched_getscheduler, 0),
              SyscallSucceedsWithValue(SCHED_OTHER));
  struct sched_param p = {99};
  ASSERT_THAT(syscall(SYS_sched_getparam, 0, &p), SyscallSucceeds());
  EXPECT_EQ(p.sched_priority, 0);
}

TEST(SchedulerTest, Errors) {
  struct sched_param p = {0};
  EXPECT_THAT(syscall(SYS_sched_getscheduler, -1), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_sched_getscheduler, 0x3fffff0),
              SyscallFailsWithErrno(ESRCH));
  EXPECT_THAT(syscall(SYS_sched_getparam, 0, nullptr),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_sched_getparam, -1, &p), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_sched_setscheduler, 0, 4, &p),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_sched_setscheduler, 0, -1, &p),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_sched_setscheduler, 0, SCHED_OTHER, nullptr),
              SyscallFailsWithErrno(EINVAL));
  // Real-time policies need a priority of 1 to 99, the others 0.
  EXPECT_THAT(syscall(SYS_sched_setscheduler, 0, SCHED_FIFO, &p),
              SyscallFailsWithErrno(EINVAL));
  p.sched_priority = 1;
  EXPECT_THAT(syscall(SYS_sched_setscheduler, 0, SCHED_OTHER, &p),
              SyscallFailsWithErrno(EINVAL));
  p.sched_priority = 100;
  EXPECT_THAT(syscall(SYS_sched_setscheduler, 0, SCHED_RR, &p),
              SyscallFailsWithErrno(EINVAL));
  p.sched_priority = 0;
  EXPECT_THAT(syscall(SYS_sched_setparam, 0, nullptr),
              SyscallFailsWithErrno(EINVAL));
}

TEST(SchedulerTest, BatchAndIdleAndResetOnFork) {
  std::thread t([] {
    struct sched_param p = {0};
    ASSERT_THAT(syscall(SYS_sched_setscheduler, 0, SCHED_BATCH, &p),
                SyscallSucceeds());
    EXPECT_THAT(syscall(SYS_sched_getscheduler, 0),
                SyscallSucceedsWithValue(SCHED_BATCH));
    ASSERT_THAT(
        syscall(SYS_sched_setscheduler, 0, SCHED_IDLE | SCHED_RESET_ON_FORK, &p),
        SyscallSucceeds());
    EXPECT_THAT(syscall(SYS_sched_getscheduler, 0),
                SyscallSucceedsWithValue(SCHED_IDLE | SCHED_RESET_ON_FORK));
    ASSERT_THAT(syscall(SYS_sched_setparam, 0, &p), SyscallSucceeds());
    EXPECT_THAT(syscall(SYS_sched_getscheduler, 0),
                SyscallSucceedsWithValue(SCHED_IDLE | SCHED_RESET_ON_FORK));
  });
  t.join();
}

TEST(SchedulerTest, RealTimeWithoutPrivilegeIsEperm) {
  std::thread t([] {
    ASSERT_THAT(syscall(SYS_setresuid, 65534, 65534, 65534), SyscallSucceeds());
    struct sched_param p = {1};
    // RLIMIT_RTPRIO is 0 by default.
    EXPECT_THAT(syscall(SYS_sched_setscheduler, 0, SCHED_FIFO, &p),
                SyscallFailsWithErrno(EPERM));
  });
  t.join();
}

TEST(SchedulerTest, PriorityRange) {
  EXPECT_THAT(syscall(SYS_sched_get_priority_max, SCHED_FIFO),
              SyscallSucceedsWithValue(99));
  EXPECT_THAT(syscall(SYS_sched_get_priority_min, SCHED_FIFO),
              SyscallSucceedsWithValue(1));
  EXPECT_THAT(syscall(SYS_sched_get_priority_max, SCHED_RR),
              SyscallSucceedsWithValue(99));
  for (int policy : {SCHED_OTHER, SCHED_BATCH, SCHED_IDLE}) {
    EXPECT_THAT(syscall(SYS_sched_get_priority_max, policy),
                SyscallSucceedsWithValue(0));
    EXPECT_THAT(syscall(SYS_sched_get_priority_min, policy),
                SyscallSucceedsWithValue(0));
  }
  EXPECT_THAT(syscall(SYS_sched_get_priority_max, 4),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_sched_get_priority_min, -1),
              SyscallFailsWithErrno(EINVAL));
}

TEST(SchedulerTest, RoundRobinInterval) {
  struct timespec ts = {-1, -1};
  ASSERT_THAT(syscall(SYS_sched_rr_get_interval, 0, &ts), SyscallSucceeds());
  EXPECT_GE(ts.tv_sec, 0);
  EXPECT_GE(ts.tv_nsec, 0);
  EXPECT_LT(ts.tv_nsec, 1000000000);
  EXPECT_THAT(syscall(SYS_sched_rr_get_interval, -1, &ts),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_sched_rr_get_interval, 0x3fffff0, &ts),
              SyscallFailsWithErrno(ESRCH));
}

TEST(PriorityTest, RawGetpriorityIsTwentyMinusNice) {
  // The system call returns 20 - nice; libc undoes it.
  const long raw = syscall(SYS_getpriority, PRIO_PROCESS, 0);
  ASSERT_THAT(raw, SyscallSucceeds());
  errno = 0;
  EXPECT_EQ(getpriority(PRIO_PROCESS, 0), 20 - raw);
  EXPECT_EQ(errno, 0);
}

TEST(PriorityTest, NiceIsPerThread) {
  const long before = syscall(SYS_getpriority, PRIO_PROCESS, 0);
  std::thread t([] {
    ASSERT_THAT(syscall(SYS_setpriority, PRIO_PROCESS, 0, 5), SyscallSucceeds());
    EXPECT_THAT(syscall(SYS_getpriority, PRIO_PROCESS, 0),
                SyscallSucceedsWithValue(15));
    // Out of range values are clamped.
    ASSERT_THAT(syscall(SYS_setpriority, PRIO_PROCESS, 0, 100), SyscallSucceeds());
    EXPECT_THAT(syscall(SYS_getpriority, PRIO_PROCESS, 0),
                SyscallSucceedsWithValue(1));
  });
  t.join();
  EXPECT_THAT(syscall(SYS_getpriority, PRIO_PROCESS, 0),
              SyscallSucceedsWithValue(before));
}

TEST(PriorityTest, LoweringNiceNeedsPrivilege) {
  std::thread t([] {
    ASSERT_THAT(syscall(SYS_setpriority, PRIO_PROCESS, 0, 10), SyscallSucceeds());
    ASSERT_THAT(syscall(SYS_setresuid, 65534, 65534, 65534), SyscallSucceeds());
    // Raising nice is fine; lowering needs CAP_SYS_NICE or RLIMIT_NICE.
    EXPECT_THAT(syscall(SYS_setpriority, PRIO_PROCESS, 0, 12), SyscallSucceeds());
    EXPECT_THAT(syscall(SYS_setpriority, PRIO_PROCESS, 0, 11),
                SyscallFailsWithErrno(EACCES));
  });
  t.join();
}

TEST(PriorityTest, Errors) {
  EXPECT_THAT(syscall(SYS_getpriority, 3, 0), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_setpriority, -1, 0, 0), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_getpriority, PRIO_PROCESS, 0x3fffff0),
              SyscallFailsWithErrno(ESRCH));
  EXPECT_THAT(syscall(SYS_setpriority, PRIO_PROCESS, 0x3fffff0, 0),
              SyscallFailsWithErrno(ESRCH));
  EXPECT_THAT(syscall(SYS_getpriority, PRIO_PGRP, 0x3fffff0),
              SyscallFailsWithErrno(ESRCH));
}

TEST(PriorityTest, GroupAndUserSeeTheBestPriority) {
  // Our own group and user include this thread.
  const long own = syscall(SYS_getpriority, PRIO_PROCESS, 0);
  EXPECT_THAT(syscall(SYS_getpriority, PRIO_PGRP, 0),
              SyscallSucceedsWithValue(::testing::Ge(own)));
  EXPECT_THAT(syscall(SYS_getpriority, PRIO_USER, 0),
              SyscallSucceedsWithValue(::testing::Ge(own)));
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
