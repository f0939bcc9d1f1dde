// Threads: clone(CLONE_THREAD) through the C library, their ids, their
// exit, and many of them contending for a mutex.

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

TEST(ThreadsTest, IdsAreDistinctAndShareThePid) {
  constexpr int kThreads = 16;
  std::mutex mu;
  std::set<pid_t> tids;
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; i++) {
    threads.emplace_back([&] {
      EXPECT_EQ(syscall(SYS_getpid), getpid());
      EXPECT_EQ(syscall(SYS_getppid), getppid());
      std::lock_guard<std::mutex> lock(mu);
      tids.insert(syscall(SYS_gettid));
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(tids.size(), static_cast<size_t>(kThreads));
  EXPECT_EQ(tids.count(getpid()), 0u);
}

TEST(ThreadsTest, SixtyFourThreadsHammerAMutex) {
  constexpr int kThreads = 64;
  constexpr int kIterations = 2000;
  pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  long count = 0;
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; i++) {
    threads.emplace_back([&] {
      for (int j = 0; j < kIterations; j++) {
        pthread_mutex_lock(&mu);
        count++;
        pthread_mutex_unlock(&mu);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(count, static_cast<long>(kThreads) * kIterations);
}

TEST(ThreadsTest, ManyShortLivedThreads) {
  std::atomic<int> ran{0};
  for (int i = 0; i < 200; i++) {
    std::thread t([&] { ran++; });
    t.join();
  }
  EXPECT_EQ(ran.load(), 200);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
