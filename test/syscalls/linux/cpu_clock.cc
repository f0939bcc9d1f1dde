// CPU-time clocks: CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID, and
// the clock ids of clock_getcpuclockid(3) and pthread_getcpuclockid(3),
// read with clock_gettime(2) and slept on with clock_nanosleep(2).

#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

constexpr int64_t kNanosPerSecond = 1000000000;
constexpr pid_t kNoSuchPid = 4194303;

// The kernel's encoding of CPU clock ids (include/linux/posix-timers.h).
clockid_t ProcessClock(pid_t pid, int which) {
  return static_cast<clockid_t>((~static_cast<unsigned>(pid) << 3) | which);
}
clockid_t ThreadClock(pid_t tid, int which) {
  return ProcessClock(tid, which | 4);
}
constexpr int kCpuClockProf = 0;
constexpr int kCpuClockVirt = 1;
constexpr int kCpuClockSched = 2;
constexpr int kClockFd = 3;

int64_t Read(clockid_t clock) {
  struct timespec ts;
  if (syscall(SYS_clock_gettime, clock, &ts) != 0) return -1;
  return ts.tv_sec * kNanosPerSecond + ts.tv_nsec;
}

// Burns CPU until `clock` has advanced by `ns`, or five seconds of wall time.
void Burn(clockid_t clock, int64_t ns) {
  int64_t start = Read(clock);
  int64_t wall_end = Read(CLOCK_MONOTONIC) + 5 * kNanosPerSecond;
  volatile uint64_t sink = 0;
  while (Read(clock) - start < ns && Read(CLOCK_MONOTONIC) < wall_end) {
    for (int i = 0; i < 100000; i++) sink = sink + i;
  }
}

TEST(CpuClockTest, ClockGetcpuclockidAdvances) {
  clockid_t clock;
  ASSERT_EQ(clock_getcpuclockid(0, &clock), 0);
  int64_t a = Read(clock);
  ASSERT_GE(a, 0);
  Burn(clock, 2000000);
  EXPECT_GE(Read(clock) - a, 2000000);
  // The same clock by pid.
  ASSERT_EQ(clock_getcpuclockid(getpid(), &clock), 0);
  EXPECT_GE(Read(clock), a);
}

TEST(CpuClockTest, PthreadGetcpuclockid) {
  clockid_t clock;
  ASSERT_EQ(pthread_getcpuclockid(pthread_self(), &clock), 0);
  int64_t a = Read(clock);
  ASSERT_GE(a, 0);
  Burn(CLOCK_THREAD_CPUTIME_ID, 2000000);
  int64_t b = Read(clock);
  EXPECT_GE(b - a, 2000000);
  // Close to CLOCK_THREAD_CPUTIME_ID, which is the same clock.
  EXPECT_NEAR(Read(CLOCK_THREAD_CPUTIME_ID), b, 50000000);
}

TEST(CpuClockTest, EncodedClocksOfSelf) {
  pid_t tid = syscall(SYS_gettid);
  for (int which : {kCpuClockProf, kCpuClockVirt, kCpuClockSched}) {
    EXPECT_GE(Read(ProcessClock(getpid(), which)), 0) << which;
    EXPECT_GE(Read(ThreadClock(tid, which)), 0) << which;
    // Pid 0 means the caller.
    EXPECT_GE(Read(ProcessClock(0, which)), 0) << which;
    EXPECT_GE(Read(ThreadClock(0, which)), 0) << which;
  }
}

TEST(CpuClockTest, ProcessClockCoversThreadClock) {
  Burn(CLOCK_THREAD_CPUTIME_ID, 1000000);
  int64_t thread = Read(CLOCK_THREAD_CPUTIME_ID);
  int64_t process = Read(CLOCK_PROCESS_CPUTIME_ID);
  EXPECT_GE(process, thread);
}

TEST(CpuClockTest, SleepingUsesLittleCpu) {
  int64_t before = Read(CLOCK_THREAD_CPUTIME_ID);
  struct timespec ts = {0, 200 * 1000 * 1000};
  ASSERT_THAT(nanosleep(&ts, nullptr), SyscallSucceeds());
  EXPECT_LT(Read(CLOCK_THREAD_CPUTIME_ID) - before, 100 * 1000 * 1000);
}

TEST(CpuClockTest, NoSuchTargetIsEinval) {
  struct timespec ts;
  EXPECT_THAT(syscall(SYS_clock_gettime, ProcessClock(kNoSuchPid, kCpuClockSched),
                      &ts),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_clock_gettime, ThreadClock(kNoSuchPid, kCpuClockSched),
                      &ts),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_clock_getres, ThreadClock(kNoSuchPid, kCpuClockSched),
                      &ts),
              SyscallFailsWithErrno(EINVAL));
}

TEST(CpuClockTest, ClockFdIdsAreEinval) {
  // Ids of clock file descriptors (posix clocks of devices): none here.
  struct timespec ts;
  EXPECT_THAT(syscall(SYS_clock_gettime, ProcessClock(getpid(), kClockFd), &ts),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_clock_getres, ProcessClock(getpid(), kClockFd), &ts),
              SyscallFailsWithErrno(EINVAL));
}

TEST(CpuClockTest, ResolutionIsOneNanosecond) {
  for (clockid_t clock :
       {static_cast<clockid_t>(CLOCK_PROCESS_CPUTIME_ID),
        static_cast<clockid_t>(CLOCK_THREAD_CPUTIME_ID),
        ProcessClock(getpid(), kCpuClockSched)}) {
    struct timespec res = {-1, -1};
    ASSERT_THAT(syscall(SYS_clock_getres, clock, &res), SyscallSucceeds());
    EXPECT_EQ(res.tv_sec, 0);
    EXPECT_EQ(res.tv_nsec, 1);
  }
}

TEST(CpuClockTest, NanosleepOnThreadClocksIsUnsupported) {
  struct timespec ts = {0, 1000};
  EXPECT_THAT(syscall(SYS_clock_nanosleep, CLOCK_THREAD_CPUTIME_ID, 0, &ts,
                      nullptr),
              SyscallFailsWithErrno(EOPNOTSUPP));
  EXPECT_THAT(syscall(SYS_clock_nanosleep,
                      ThreadClock(syscall(SYS_gettid), kCpuClockSched), 0, &ts,
                      nullptr),
              SyscallFailsWithErrno(EINVAL));
}

TEST(CpuClockTest, NanosleepOnClocksWithoutTimers) {
  struct timespec ts = {0, 1000};
  for (clockid_t clock : {CLOCK_MONOTONIC_RAW, CLOCK_REALTIME_COARSE,
                          CLOCK_MONOTONIC_COARSE}) {
    EXPECT_THAT(syscall(SYS_clock_nanosleep, clock, 0, &ts, nullptr),
                SyscallFailsWithErrno(EOPNOTSUPP))
        << clock;
  }
}

TEST(CpuClockTest, AbsoluteCpuSleepInThePastReturnsAtOnce) {
  struct timespec ts = {0, 1};
  EXPECT_THAT(syscall(SYS_clock_nanosleep, CLOCK_PROCESS_CPUTIME_ID,
                      TIMER_ABSTIME, &ts, nullptr),
              SyscallSucceedsWithValue(0));
}

TEST(CpuClockTest, ProcessCpuSleepEndsAsAnotherThreadWorks) {
  std::atomic<bool> stop(false);
  pthread_t worker;
  ASSERT_EQ(pthread_create(
                &worker, nullptr,
                [](void* arg) -> void* {
                  auto* stop = static_cast<std::atomic<bool>*>(arg);
                  volatile uint64_t sink = 0;
                  while (!stop->load()) sink = sink + 1;
                  return nullptr;
                },
                &stop),
            0);
  struct timespec ts = {0, 20 * 1000 * 1000};
  int64_t before = Read(CLOCK_PROCESS_CPUTIME_ID);
  EXPECT_EQ(clock_nanosleep(CLOCK_PROCESS_CPUTIME_ID, 0, &ts, nullptr), 0);
  EXPECT_GE(Read(CLOCK_PROCESS_CPUTIME_ID) - before, 20 * 1000 * 1000);
  stop.store(true);
  pthread_join(worker, nullptr);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
