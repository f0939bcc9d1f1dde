// fork(2) and memory: private memory is copied on write, MAP_SHARED
// memory stays shared, and neither side sees the other's private writes.
// Every case skips while the sandbox has no fork.

#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

const size_t kPage = sysconf(_SC_PAGESIZE);

// Channel is a word of shared memory both sides of a fork can wait on.
class Channel {
 public:
  Channel() {
    void* p = mmap(nullptr, kPage, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    EXPECT_THAT(p, SyscallSucceeds());
    word_ = static_cast<std::atomic<int>*>(p);
  }
  ~Channel() { munmap(word_, kPage); }
  void Set(int v) { word_->store(v); }
  // Wait spins (politely) until the word is v.
  void Wait(int v) {
    while (word_->load() != v) sched_yield();
  }

 private:
  std::atomic<int>* word_;
};

// Fork returns fork()'s result, or -1 with the test skipped.
pid_t Fork() {
  pid_t pid = fork();
  if (pid < 0 && errno == ENOSYS) return -2;
  return pid;
}

#define FORK_OR_SKIP(pid)                                         \
  pid_t pid = Fork();                                             \
  if (pid == -2) GTEST_SKIP() << "fork(2) is not available";      \
  ASSERT_THAT(pid, SyscallSucceeds())

int WaitExit(pid_t pid) {
  int status = 0;
  EXPECT_THAT(waitpid(pid, &status, 0), SyscallSucceedsWithValue(pid));
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(ForkCowTest, PrivateWritesStayPrivate) {
  char* p = static_cast<char*>(mmap(nullptr, 4 * kPage, PROT_READ | PROT_WRITE,
                                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_THAT(p, SyscallSucceeds());
  memset(p, 'p', 4 * kPage);
  Channel ch;
  FORK_OR_SKIP(pid);
  if (pid == 0) {
    if (p[0] != 'p' || p[3 * kPage] != 'p') _exit(1);
    p[kPage] = 'c';
    ch.Set(1);
    ch.Wait(2);
    // The parent wrote page 2 after the fork; the child must not see it.
    _exit(p[2 * kPage] == 'p' && p[kPage] == 'c' ? 0 : 2);
  }
  ch.Wait(1);
  EXPECT_EQ(p[kPage], 'p');
  p[2 * kPage] = 'P';
  ch.Set(2);
  EXPECT_EQ(WaitExit(pid), 0);
  EXPECT_EQ(p[kPage], 'p');
  EXPECT_EQ(p[2 * kPage], 'P');
  munmap(p, 4 * kPage);
}

TEST(ForkCowTest, SharedMemoryIsShared) {
  char* p = static_cast<char*>(mmap(nullptr, kPage, PROT_READ | PROT_WRITE,
                                    MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  ASSERT_THAT(p, SyscallSucceeds());
  p[0] = 'p';
  FORK_OR_SKIP(pid);
  if (pid == 0) {
    p[1] = 'c';
    _exit(p[0] == 'p' ? 0 : 1);
  }
  EXPECT_EQ(WaitExit(pid), 0);
  EXPECT_EQ(p[1], 'c');
  munmap(p, kPage);
}

TEST(ForkCowTest, HeapAndStackAreCopied) {
  volatile int on_stack = 1;
  int* on_heap = new int(1);
  FORK_OR_SKIP(pid);
  if (pid == 0) {
    on_stack = 2;
    *on_heap = 2;
    _exit(on_stack == 2 && *on_heap == 2 ? 0 : 1);
  }
  EXPECT_EQ(WaitExit(pid), 0);
  EXPECT_EQ(on_stack, 1);
  EXPECT_EQ(*on_heap, 1);
  delete on_heap;
}

// The child's write to memory read-only at fork time still faults.
TEST(ForkCowTest, ReadOnlyStaysReadOnly) {
  char* p = static_cast<char*>(mmap(nullptr, kPage, PROT_READ,
                                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_THAT(p, SyscallSucceeds());
  FORK_OR_SKIP(pid);
  if (pid == 0) {
    signal(SIGSEGV, SIG_DFL);
    *reinterpret_cast<volatile char*>(p) = 1;
    _exit(0);
  }
  EXPECT_EQ(WaitExit(pid), 128 + SIGSEGV);
  munmap(p, kPage);
}

// A large private mapping forks and both sides can write all of it.
TEST(ForkCowTest, LargeMappingBothSidesWrite) {
  const size_t len = 64 << 20;
  char* p = static_cast<char*>(mmap(nullptr, len, PROT_READ | PROT_WRITE,
                                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_THAT(p, SyscallSucceeds());
  for (size_t i = 0; i < len; i += kPage) p[i] = 1;
  FORK_OR_SKIP(pid);
  if (pid == 0) {
    for (size_t i = 0; i < len; i += kPage) p[i] = 2;
    for (size_t i = 0; i < len; i += kPage) {
      if (p[i] != 2) _exit(1);
    }
    _exit(0);
  }
  for (size_t i = 0; i < len; i += 2 * kPage) p[i] = 3;
  EXPECT_EQ(WaitExit(pid), 0);
  for (size_t i = 0; i < len; i += kPage) {
    ASSERT_EQ(p[i], (i / kPage) % 2 == 0 ? 3 : 1) << i;
  }
  munmap(p, len);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
