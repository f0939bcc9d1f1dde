// exit(2) and exit_group(2): a thread's exit leaves the process running; the
// process's status is its leader's; exit_group ends every thread.

#include <errno.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/multiprocess_util.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

int StatusOf(const std::string& action) {
  HelperSpec spec;
  spec.action = action;
  const pid_t pid = SpawnHelper(spec);
  EXPECT_THAT(pid, SyscallSucceeds());
  return WaitForStatus(pid);
}

TEST(ExitTest, ExitCodeIsTheLowByte) {
  const int status = StatusOf("exit=300");
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 300 & 0xff);
}

TEST(ExitTest, ThreadExitLeavesTheProcessRunning) {
  std::atomic<bool> exited{false};
  std::thread t([&] {
    exited = true;
    // The thread ends here; the C library joins it through
    // CLONE_CHILD_CLEARTID.
    syscall(SYS_exit, 0);
  });
  t.join();
  EXPECT_TRUE(exited.load());
  EXPECT_THAT(syscall(SYS_getpid), SyscallSucceedsWithValue(getpid()));
}

TEST(ExitTest, ProcessStatusIsTheLastThreadsWhenThreadsExitOneByOne) {
  // The leader exits with 3 first; the last thread exits with 5 later. The
  // process is not reported until the last thread is gone, and (as of Linux
  // 6.x) with that thread's code.
  const int status = StatusOf("leader-exit");
  ASSERT_TRUE(WIFEXITED(status)) << std::hex << status;
  EXPECT_EQ(WEXITSTATUS(status), 5);
}

TEST(ExitTest, ExitGroupFromAThreadEndsTheProcess) {
  const int status = StatusOf("thread-exit-group");
  ASSERT_TRUE(WIFEXITED(status)) << std::hex << status;
  EXPECT_EQ(WEXITSTATUS(status), 7);
}

TEST(ExitTest, FatalSignalEndsEveryThread) {
  const int status = StatusOf("kill=10");
  ASSERT_TRUE(WIFSIGNALED(status)) << std::hex << status;
  EXPECT_EQ(WTERMSIG(status), SIGUSR1);
}

TEST(ExitTest, ManyThreadsHammerAMutex) {
  // 64 threads of a child process contend for one pthread mutex
  // (futex-based) and all finish.
  const int status = StatusOf("mutex=64");
  ASSERT_TRUE(WIFEXITED(status)) << std::hex << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
