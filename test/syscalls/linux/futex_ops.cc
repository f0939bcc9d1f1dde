// futex(2) beyond wait and wake: FUTEX_REQUEUE, FUTEX_CMP_REQUEUE,
// FUTEX_WAKE_OP, the PI operations, robust lists, futex_waitv(2), shared
// futexes across processes, and a mutex hammered by many threads.
//
// Tests with a second thread or process need clone(2) and fork(2) and are
// skipped in the sandbox until it has them.

#include <linux/futex.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/test_util.h"

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif
#ifndef FUTEX2_SIZE_U32
#define FUTEX2_SIZE_U32 0x02
#endif
#ifndef FUTEX2_PRIVATE
#define FUTEX2_PRIVATE FUTEX_PRIVATE_FLAG
#endif

namespace pyvisor {
namespace testing {
namespace {

constexpr int64_t kNanosPerSecond = 1000000000;
constexpr uint32_t kNoSuchTid = 4194303;

long Futex(void* addr, int op, uint32_t val, long val2_or_ts = 0,
           void* addr2 = nullptr, uint32_t val3 = 0) {
  return syscall(SYS_futex, addr, op, val, val2_or_ts, addr2, val3);
}

uint32_t Tid() { return syscall(SYS_gettid); }

int64_t Now() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * kNanosPerSecond + ts.tv_nsec;
}

// FUTEX_OP(op, oparg, cmp, cmparg) from linux/futex.h, spelled out.
uint32_t WakeOp(int op, int oparg, int cmp, int cmparg) {
  return ((op & 0xf) << 28) | ((cmp & 0xf) << 24) | ((oparg & 0xfff) << 12) |
         (cmparg & 0xfff);
}

// FUTEX_CLOCK_REALTIME goes only with operations that take an absolute
// timeout: FUTEX_WAIT's is relative.
TEST(FutexWaitTest, ClockRealtimeWithWaitIsEnosys) {
  uint32_t word = 1;
  struct timespec ts = {0, 1000};
  EXPECT_THAT(syscall(SYS_futex, &word,
                      FUTEX_WAIT_PRIVATE | FUTEX_CLOCK_REALTIME, 1, &ts,
                      nullptr, 0),
              SyscallFailsWithErrno(ENOSYS));
  EXPECT_THAT(syscall(SYS_futex, &word,
                      FUTEX_LOCK_PI_PRIVATE | FUTEX_CLOCK_REALTIME, 0, nullptr,
                      nullptr, 0),
              SyscallFailsWithErrno(ENOSYS));
}

// Requeue.

TEST(FutexRequeueTest, CmpRequeueMismatchIsEagain) {
  uint32_t a = 1, b = 0;
  EXPECT_THAT(Futex(&a, FUTEX_CMP_REQUEUE_PRIVATE, 1, 1, &b, 2),
              SyscallFailsWithErrno(EAGAIN));
}

TEST(FutexRequeueTest, NoWaitersIsZero) {
  uint32_t a = 1, b = 0;
  EXPECT_THAT(Futex(&a, FUTEX_CMP_REQUEUE_PRIVATE, 1, 1, &b, 1),
              SyscallSucceedsWithValue(0));
  EXPECT_THAT(Futex(&a, FUTEX_REQUEUE_PRIVATE, 1, 1, &b),
              SyscallSucceedsWithValue(0));
}

TEST(FutexRequeueTest, NegativeCountsAreEinval) {
  uint32_t a = 1, b = 0;
  EXPECT_THAT(Futex(&a, FUTEX_CMP_REQUEUE_PRIVATE, -1, 1, &b, 1),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(Futex(&a, FUTEX_CMP_REQUEUE_PRIVATE, 1, -1, &b, 1),
              SyscallFailsWithErrno(EINVAL));
}

// Wake-op.

TEST(FutexWakeOpTest, Operations) {
  uint32_t a = 0, b;
  struct Case {
    int op;
    int oparg;
    uint32_t before;
    uint32_t after;
  } cases[] = {
      {FUTEX_OP_SET, 7, 5, 7},
      {FUTEX_OP_ADD, 3, 5, 8},
      {FUTEX_OP_OR, 0x10, 5, 0x15},
      {FUTEX_OP_ANDN, 4, 5, 1},
      {FUTEX_OP_XOR, 1, 5, 4},
      {FUTEX_OP_SET | FUTEX_OP_OPARG_SHIFT, 4, 5, 16},
      {FUTEX_OP_ADD, -1, 5, 4},
  };
  for (const Case& c : cases) {
    b = c.before;
    EXPECT_THAT(Futex(&a, FUTEX_WAKE_OP_PRIVATE, 1, 1, &b,
                      WakeOp(c.op, c.oparg, FUTEX_OP_CMP_EQ, 0)),
                SyscallSucceedsWithValue(0))
        << "op " << c.op;
    EXPECT_EQ(b, c.after) << "op " << c.op;
  }
}

TEST(FutexWakeOpTest, UnknownOpIsEnosys) {
  uint32_t a = 0, b = 5;
  EXPECT_THAT(Futex(&a, FUTEX_WAKE_OP_PRIVATE, 1, 1, &b,
                    WakeOp(6, 1, FUTEX_OP_CMP_EQ, 0)),
              SyscallFailsWithErrno(ENOSYS));
  EXPECT_EQ(b, 5u);
}

TEST(FutexWakeOpTest, UnknownComparisonIsEnosys) {
  uint32_t a = 0, b = 5;
  EXPECT_THAT(Futex(&a, FUTEX_WAKE_OP_PRIVATE, 1, 1, &b,
                    WakeOp(FUTEX_OP_SET, 1, 7, 0)),
              SyscallFailsWithErrno(ENOSYS));
}

TEST(FutexWakeOpTest, UnwritableWordIsEfault) {
  uint32_t a = 0;
  void* page = mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(page, MAP_FAILED);
  EXPECT_THAT(Futex(&a, FUTEX_WAKE_OP_PRIVATE, 1, 1, page,
                    WakeOp(FUTEX_OP_SET, 1, FUTEX_OP_CMP_EQ, 0)),
              SyscallFailsWithErrno(EFAULT));
  munmap(page, 4096);
}

// PI futexes, one thread.

TEST(FutexPiTest, LockFreeTakesIt) {
  uint32_t word = 0;
  ASSERT_THAT(Futex(&word, FUTEX_LOCK_PI_PRIVATE, 0), SyscallSucceeds());
  EXPECT_EQ(word, Tid());
  EXPECT_THAT(Futex(&word, FUTEX_LOCK_PI_PRIVATE, 0),
              SyscallFailsWithErrno(EDEADLK));
  EXPECT_THAT(Futex(&word, FUTEX_TRYLOCK_PI_PRIVATE, 0),
              SyscallFailsWithErrno(EDEADLK));
  ASSERT_THAT(Futex(&word, FUTEX_UNLOCK_PI_PRIVATE, 0), SyscallSucceeds());
  EXPECT_EQ(word, 0u);
}

TEST(FutexPiTest, TrylockFreeTakesIt) {
  uint32_t word = 0;
  ASSERT_THAT(Futex(&word, FUTEX_TRYLOCK_PI_PRIVATE, 0), SyscallSucceeds());
  EXPECT_EQ(word, Tid());
  ASSERT_THAT(Futex(&word, FUTEX_UNLOCK_PI_PRIVATE, 0), SyscallSucceeds());
}

TEST(FutexPiTest, UnlockByNonOwnerIsEperm) {
  uint32_t word = 0;
  EXPECT_THAT(Futex(&word, FUTEX_UNLOCK_PI_PRIVATE, 0),
              SyscallFailsWithErrno(EPERM));
  word = kNoSuchTid;
  EXPECT_THAT(Futex(&word, FUTEX_UNLOCK_PI_PRIVATE, 0),
              SyscallFailsWithErrno(EPERM));
}

TEST(FutexPiTest, OwnerDiedBitIsKept) {
  uint32_t word = FUTEX_OWNER_DIED;
  ASSERT_THAT(Futex(&word, FUTEX_LOCK_PI_PRIVATE, 0), SyscallSucceeds());
  EXPECT_EQ(word, Tid() | FUTEX_OWNER_DIED);
  word = Tid();
  ASSERT_THAT(Futex(&word, FUTEX_UNLOCK_PI_PRIVATE, 0), SyscallSucceeds());
}

TEST(FutexPiTest, DeadOwnerIsEsrch) {
  uint32_t word = kNoSuchTid;
  EXPECT_THAT(Futex(&word, FUTEX_LOCK_PI_PRIVATE, 0),
              SyscallFailsWithErrno(ESRCH));
}

TEST(FutexPiTest, UnalignedIsEinval) {
  alignas(8) uint32_t words[2] = {0, 0};
  void* odd = reinterpret_cast<char*>(words) + 1;
  EXPECT_THAT(Futex(odd, FUTEX_LOCK_PI_PRIVATE, 0), SyscallFailsWithErrno(EINVAL));
}

// futex_waitv.

struct FutexWaitv {
  uint64_t val;
  uint64_t uaddr;
  uint32_t flags;
  uint32_t reserved;
};

TEST(FutexWaitvTest, MismatchIsEagain) {
  uint32_t a = 0, b = 1;
  FutexWaitv w[2] = {{0, reinterpret_cast<uint64_t>(&a), FUTEX2_SIZE_U32, 0},
                     {0, reinterpret_cast<uint64_t>(&b), FUTEX2_SIZE_U32, 0}};
  EXPECT_THAT(syscall(SYS_futex_waitv, w, 2, 0, nullptr, 0),
              SyscallFailsWithErrno(EAGAIN));
}

TEST(FutexWaitvTest, TimesOut) {
  uint32_t a = 0, b = 0;
  FutexWaitv w[2] = {
      {0, reinterpret_cast<uint64_t>(&a), FUTEX2_SIZE_U32 | FUTEX2_PRIVATE, 0},
      {0, reinterpret_cast<uint64_t>(&b), FUTEX2_SIZE_U32, 0}};
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  ts.tv_nsec += 10 * 1000 * 1000;
  if (ts.tv_nsec >= kNanosPerSecond) {
    ts.tv_sec++;
    ts.tv_nsec -= kNanosPerSecond;
  }
  EXPECT_THAT(syscall(SYS_futex_waitv, w, 2, 0, &ts, CLOCK_MONOTONIC),
              SyscallFailsWithErrno(ETIMEDOUT));
}

TEST(FutexWaitvTest, InvalidArgumentsAreEinval) {
  uint32_t a = 0;
  FutexWaitv w = {0, reinterpret_cast<uint64_t>(&a), FUTEX2_SIZE_U32, 0};
  EXPECT_THAT(syscall(SYS_futex_waitv, &w, 0, 0, nullptr, 0),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_futex_waitv, &w, 129, 0, nullptr, 0),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_futex_waitv, &w, 1, 1, nullptr, 0),
              SyscallFailsWithErrno(EINVAL));
  FutexWaitv bad = w;
  bad.flags = 0;  // No size.
  EXPECT_THAT(syscall(SYS_futex_waitv, &bad, 1, 0, nullptr, 0),
              SyscallFailsWithErrno(EINVAL));
  bad = w;
  bad.reserved = 1;
  EXPECT_THAT(syscall(SYS_futex_waitv, &bad, 1, 0, nullptr, 0),
              SyscallFailsWithErrno(EINVAL));
  struct timespec ts = {0, 0};
  EXPECT_THAT(syscall(SYS_futex_waitv, &w, 1, 0, &ts, CLOCK_BOOTTIME),
              SyscallFailsWithErrno(EINVAL));
}

// Robust lists, as registered by glibc for every thread.

TEST(FutexRobustTest, GetReturnsWhatWasSet) {
  struct robust_list_head* head;
  size_t len;
  ASSERT_THAT(syscall(SYS_get_robust_list, 0, &head, &len), SyscallSucceeds());
  EXPECT_EQ(len, sizeof(struct robust_list_head));
  EXPECT_THAT(syscall(SYS_set_robust_list, head, len + 1),
              SyscallFailsWithErrno(EINVAL));
}

// Several threads.

TEST(FutexThreadsTest, RequeueMovesWaiters) {
  std::atomic<uint32_t> a{0}, b{0};
  std::atomic<int> done{0};
  std::vector<std::thread> waiters;
  for (int i = 0; i < 3; i++) {
    waiters.emplace_back([&] {
      while (b.load() == 0) Futex(&a, FUTEX_WAIT_PRIVATE, 0);
      done++;
    });
  }
  // Move everything waiting on a to b (after they all sleep).
  long moved = 0;
  int64_t give_up = Now() + 10 * kNanosPerSecond;
  while (moved < 3 && Now() < give_up) {
    long n = Futex(&a, FUTEX_CMP_REQUEUE_PRIVATE, 0, INT_MAX, &b, 0);
    ASSERT_GE(n, 0);
    moved += n;
    if (moved < 3) usleep(1000);
  }
  EXPECT_EQ(moved, 3);
  // A wake on a finds nobody now; one on b wakes them.
  EXPECT_EQ(Futex(&a, FUTEX_WAKE_PRIVATE, INT_MAX), 0);
  b = 1;
  long woken = Futex(&b, FUTEX_WAKE_PRIVATE, INT_MAX);
  for (auto& t : waiters) t.join();
  EXPECT_EQ(woken, 3);
  EXPECT_EQ(done.load(), 3);
}

TEST(FutexThreadsTest, WakeOpWakesSecondFutexOnCondition) {
  std::atomic<uint32_t> a{0}, b{0};
  std::atomic<bool> woke{false};
  std::thread waiter([&] {
    // Only a wake ends this loop: a changed word (EAGAIN) is retried.
    while (Futex(&b, FUTEX_WAIT_PRIVATE, 0) != 0) {
    }
    woke = true;
  });
  long woken = 0;
  int64_t give_up = Now() + 10 * kNanosPerSecond;
  while (woken == 0 && Now() < give_up) {
    // Sets b to 1; the old value 0 passes "== 0", so b's waiter is woken if
    // it sleeps already. If not, put b back for it and try again.
    woken = Futex(&a, FUTEX_WAKE_OP_PRIVATE, 1, 1, &b,
                  WakeOp(FUTEX_OP_SET, 1, FUTEX_OP_CMP_EQ, 0));
    if (woken == 0) {
      b = 0;
      usleep(1000);
    }
  }
  waiter.join();
  EXPECT_EQ(woken, 1);
  EXPECT_TRUE(woke.load());
  EXPECT_EQ(b.load(), 1u);
}

TEST(FutexThreadsTest, PiMutexContention) {
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setprotocol(&attr, PTHREAD_PRIO_INHERIT);
  pthread_mutex_t mu;
  pthread_mutex_init(&mu, &attr);
  int64_t counter = 0;
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; i++) {
    threads.emplace_back([&] {
      for (int j = 0; j < 2000; j++) {
        ASSERT_EQ(pthread_mutex_lock(&mu), 0);
        counter++;
        ASSERT_EQ(pthread_mutex_unlock(&mu), 0);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(counter, 8 * 2000);
  pthread_mutex_destroy(&mu);
}

TEST(FutexThreadsTest, RobustMutexOwnerDeath) {
  for (int protocol : {PTHREAD_PRIO_NONE, PTHREAD_PRIO_INHERIT}) {
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    pthread_mutexattr_setprotocol(&attr, protocol);
    pthread_mutex_t mu;
    pthread_mutex_init(&mu, &attr);
    // The thread exits holding the lock.
    std::thread owner([&] { ASSERT_EQ(pthread_mutex_lock(&mu), 0); });
    owner.join();
    EXPECT_EQ(pthread_mutex_lock(&mu), EOWNERDEAD) << "protocol " << protocol;
    EXPECT_EQ(pthread_mutex_consistent(&mu), 0);
    EXPECT_EQ(pthread_mutex_unlock(&mu), 0);
    pthread_mutex_destroy(&mu);
  }
}

TEST(FutexThreadsTest, RobustMutexOwnerDiesWhileWaited) {
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_t mu;
  pthread_mutex_init(&mu, &attr);
  std::atomic<bool> locked{false}, release{false};
  std::thread owner([&] {
    ASSERT_EQ(pthread_mutex_lock(&mu), 0);
    locked = true;
    while (!release) usleep(1000);
  });
  while (!locked) usleep(1000);
  std::thread waiter([&] { EXPECT_EQ(pthread_mutex_lock(&mu), EOWNERDEAD); });
  usleep(50000);
  release = true;
  owner.join();
  waiter.join();
  pthread_mutex_destroy(&mu);
}

TEST(FutexThreadsTest, WaitvReturnsWokenIndex) {
  std::atomic<uint32_t> words[3] = {{0}, {0}, {0}};
  long result = -2;
  std::atomic<bool> started{false};
  std::thread waiter([&] {
    FutexWaitv w[3];
    for (int i = 0; i < 3; i++) {
      w[i] = {0, reinterpret_cast<uint64_t>(&words[i]),
              FUTEX2_SIZE_U32 | FUTEX2_PRIVATE, 0};
    }
    started = true;
    result = syscall(SYS_futex_waitv, w, 3, 0, nullptr, 0);
  });
  while (!started) usleep(1000);
  long woken = 0;
  int64_t give_up = Now() + 10 * kNanosPerSecond;
  while (woken == 0 && Now() < give_up) {
    woken = Futex(&words[2], FUTEX_WAKE_PRIVATE, 1);
    if (woken == 0) usleep(1000);
  }
  waiter.join();
  EXPECT_EQ(woken, 1);
  EXPECT_EQ(result, 2);
}

// The program of the "done when": 64 threads hammering a mutex run
// to completion.
TEST(FutexThreadsTest, SixtyFourThreadsHammerAMutex) {
  constexpr int kThreads = 64;
  constexpr int kRounds = 500;
  pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  int64_t counter = 0;
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; i++) {
    threads.emplace_back([&] {
      for (int j = 0; j < kRounds; j++) {
        pthread_mutex_lock(&mu);
        int64_t v = counter;
        if (j % 16 == 0) sched_yield();
        counter = v + 1;
        pthread_mutex_unlock(&mu);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(counter, kThreads * kRounds);
}

// Processes.

TEST(FutexProcessTest, SharedFutexAcrossFork) {
  auto* word = static_cast<std::atomic<uint32_t>*>(
      mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
           0));
  ASSERT_NE(word, MAP_FAILED);
  word->store(0);
  pid_t child = fork();
  if (child == 0) {
    while (word->load() == 0) Futex(word, FUTEX_WAIT, 0);
    _exit(word->load() == 1 ? 0 : 1);
  }
  ASSERT_THAT(child, SyscallSucceeds());
  usleep(20000);
  word->store(1);
  int64_t give_up = Now() + 10 * kNanosPerSecond;
  int status = 0;
  while (Now() < give_up) {
    Futex(word, FUTEX_WAKE, 1);
    pid_t r = waitpid(child, &status, WNOHANG);
    if (r == child) break;
    usleep(1000);
  }
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  munmap(word, 4096);
}

TEST(FutexProcessTest, RobustListWalkedAtProcessExit) {
  auto* mu = static_cast<pthread_mutex_t*>(
      mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
           0));
  ASSERT_NE(mu, MAP_FAILED);
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  pthread_mutex_init(mu, &attr);
  pid_t child = fork();
  if (child == 0) {
    pthread_mutex_lock(mu);
    _exit(0);
  }
  ASSERT_THAT(child, SyscallSucceeds());
  int status;
  ASSERT_THAT(waitpid(child, &status, 0), SyscallSucceedsWithValue(child));
  EXPECT_EQ(pthread_mutex_lock(mu), EOWNERDEAD);
  EXPECT_EQ(pthread_mutex_consistent(mu), 0);
  EXPECT_EQ(pthread_mutex_unlock(mu), 0);
  munmap(mu, 4096);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
