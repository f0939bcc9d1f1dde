// getrusage(2), times(2), sysinfo(2), umask(2) and personality(2).

#include <errno.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/times.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/multiprocess_util.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

long Micros(const struct timeval& tv) { return tv.tv_sec * 1000000 + tv.tv_usec; }

long CpuMicros(int who) {
  struct rusage ru = {};
  EXPECT_THAT(syscall(SYS_getrusage, who, &ru), SyscallSucceeds());
  return Micros(ru.ru_utime) + Micros(ru.ru_stime);
}

TEST(GetrusageTest, Targets) {
  struct rusage ru;
  EXPECT_THAT(syscall(SYS_getrusage, RUSAGE_SELF, &ru), SyscallSucceeds());
  EXPECT_THAT(syscall(SYS_getrusage, RUSAGE_CHILDREN, &ru), SyscallSucceeds());
  EXPECT_THAT(syscall(SYS_getrusage, RUSAGE_THREAD, &ru), SyscallSucceeds());
  EXPECT_THAT(syscall(SYS_getrusage, 2, &ru), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_getrusage, -2, &ru), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_getrusage, RUSAGE_SELF, nullptr),
              SyscallFailsWithErrno(EFAULT));
}

TEST(GetrusageTest, CpuTimeGrowsWhileSpinning) {
  const long start = CpuMicros(RUSAGE_SELF);
  volatile unsigned long x = 0;
  // Spin until 20 ms more CPU time shows (bounded, in case it never does).
  for (int round = 0; round < 100000 && CpuMicros(RUSAGE_SELF) < start + 20000;
       round++) {
    for (int i = 0; i < 100000; i++) x += i;
  }
  EXPECT_GE(CpuMicros(RUSAGE_SELF), start + 20000);
  EXPECT_GE(CpuMicros(RUSAGE_SELF), CpuMicros(RUSAGE_THREAD));
}

TEST(GetrusageTest, ExitedThreadsCountForTheProcess) {
  long thread_time = 0;
  std::thread t([&thread_time] {
    volatile unsigned long x = 0;
    for (int round = 0; round < 100000 && CpuMicros(RUSAGE_THREAD) < 20000;
         round++) {
      for (int i = 0; i < 100000; i++) x += i;
    }
    thread_time = CpuMicros(RUSAGE_THREAD);
  });
  t.join();
  EXPECT_GE(thread_time, 20000);
  EXPECT_GE(CpuMicros(RUSAGE_SELF), thread_time);
}

TEST(GetrusageTest, MaxRssCoversTouchedMemory) {
  constexpr size_t kSize = 32 << 20;
  char* p = static_cast<char*>(
      mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
           -1, 0));
  ASSERT_NE(p, MAP_FAILED);
  for (size_t i = 0; i < kSize; i += 4096) p[i] = 1;
  struct rusage ru = {};
  ASSERT_THAT(syscall(SYS_getrusage, RUSAGE_SELF, &ru), SyscallSucceeds());
  EXPECT_GE(ru.ru_maxrss, static_cast<long>(kSize >> 10));
  munmap(p, kSize);
}

TEST(TimesTest, FillsTheBufferAndReturnsTicks) {
  struct tms buf;
  const long ticks = syscall(SYS_times, &buf);
  EXPECT_GE(ticks, 0);
  EXPECT_GE(buf.tms_utime, 0);
  EXPECT_GE(buf.tms_stime, 0);
  EXPECT_GE(syscall(SYS_times, nullptr), ticks);
  EXPECT_THAT(syscall(SYS_times, reinterpret_cast<void*>(8)),
              SyscallFailsWithErrno(EFAULT));
}

TEST(TimesTest, ChildrenAccumulateWhenWaitedFor) {
  struct tms before;
  syscall(SYS_times, &before);
  HelperSpec spec;
  spec.action = "spin=100";
  const pid_t pid = SpawnHelper(spec);
  ASSERT_THAT(pid, SyscallSucceeds());
  WaitForStatus(pid);
  struct tms after;
  syscall(SYS_times, &after);
  // 100 ms is 10 ticks of 100 Hz.
  EXPECT_GE((after.tms_cutime + after.tms_cstime) -
                (before.tms_cutime + before.tms_cstime),
            9);
}

TEST(SysinfoTest, Sane) {
  struct sysinfo info = {};
  ASSERT_THAT(syscall(SYS_sysinfo, &info), SyscallSucceeds());
  EXPECT_GE(info.uptime, 0);
  EXPECT_GT(info.totalram, 0u);
  EXPECT_LE(info.freeram, info.totalram);
  EXPECT_GE(info.procs, 1);
  EXPECT_GE(info.mem_unit, 1u);
  EXPECT_THAT(syscall(SYS_sysinfo, nullptr), SyscallFailsWithErrno(EFAULT));
}

TEST(UmaskTest, ReturnsThePreviousMask) {
  const mode_t old = syscall(SYS_umask, 0027);
  EXPECT_EQ(syscall(SYS_umask, 0777 | 01000), 0027);
  // Only the permission bits are kept.
  EXPECT_EQ(syscall(SYS_umask, old), 0777);
}

TEST(UmaskTest, ThreadsShareIt) {
  const mode_t old = umask(0);
  std::thread t([] { syscall(SYS_umask, 0077); });
  t.join();
  EXPECT_EQ(umask(old), 0077);
}

TEST(PersonalityTest, QueryAndSet) {
  const long old = syscall(SYS_personality, 0xffffffff);
  ASSERT_THAT(old, SyscallSucceeds());
  EXPECT_EQ(syscall(SYS_personality, old | ADDR_NO_RANDOMIZE), old);
  EXPECT_EQ(syscall(SYS_personality, 0xffffffff), old | ADDR_NO_RANDOMIZE);
  // A child inherits it, across exec too.
  HelperSpec spec;
  char expect[32];
  snprintf(expect, sizeof(expect), "personality=0x%lx", old | ADDR_NO_RANDOMIZE);
  spec.checks = {expect};
  const pid_t pid = SpawnHelper(spec);
  ASSERT_THAT(pid, SyscallSucceeds());
  const int status = WaitForStatus(pid);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(syscall(SYS_personality, old), old | ADDR_NO_RANDOMIZE);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
