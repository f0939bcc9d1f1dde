// Tests of the stub seccomp filter, installed in forked children.

#include "pkg/platform/ptrace/seccomp.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <vector>

#include "gtest/gtest.h"

namespace pyvisor::ptrace_platform {
namespace {

// RunFiltered runs body in a forked child under the stub filter, then exits
// the child with SYS_exit(0), and returns the child's wait status.
int RunFiltered(const std::function<void()>& body) {
  std::vector<sock_filter> filter = BuildStubFilter();
  struct sock_fprog prog = {static_cast<unsigned short>(filter.size()),
                            filter.data()};
  pid_t pid = fork();
  if (pid == 0) {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) {
      _exit(100);
    }
    body();
    syscall(SYS_exit, 0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

bool KilledBySigsys(int status) {
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS;
}

bool ExitedCleanly(int status) {
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

TEST(SeccompTest, AllowsTheInjectedCalls) {
  int status = RunFiltered([] {
    syscall(SYS_getppid);
    syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL);
    void* page = reinterpret_cast<void*>(syscall(
        SYS_mmap, 0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    syscall(SYS_mprotect, page, 4096, PROT_READ | PROT_WRITE);
    syscall(SYS_munmap, page, 4096);
  });
  EXPECT_TRUE(ExitedCleanly(status)) << status;
}

TEST(SeccompTest, KillsOtherCalls) {
  EXPECT_TRUE(KilledBySigsys(RunFiltered([] { syscall(SYS_getpid); })));
  EXPECT_TRUE(KilledBySigsys(RunFiltered([] { syscall(SYS_exit_group, 0); })));
  EXPECT_TRUE(
      KilledBySigsys(RunFiltered([] { syscall(SYS_openat, 0, "/", 0); })));
  EXPECT_TRUE(KilledBySigsys(RunFiltered([] { syscall(SYS_kill, 0, 0); })));
}

TEST(SeccompTest, ChecksArguments) {
  // prctl other than PR_SET_PDEATHSIG(SIGKILL).
  EXPECT_TRUE(KilledBySigsys(
      RunFiltered([] { syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGTERM); })));
  EXPECT_TRUE(KilledBySigsys(
      RunFiltered([] { syscall(SYS_prctl, PR_SET_NAME, "x"); })));
  // clone with flags other than the two injected sets.
  EXPECT_TRUE(KilledBySigsys(RunFiltered([] { syscall(SYS_clone, SIGCHLD); })));
  EXPECT_TRUE(KilledBySigsys(RunFiltered(
      [] { syscall(SYS_clone, kCloneProcessFlags | (1ull << 32)); })));
  // gettimeofday outside the vsyscall page.
  EXPECT_TRUE(KilledBySigsys(
      RunFiltered([] { syscall(SYS_gettimeofday, nullptr, nullptr); })));
}

TEST(SeccompTest, KillsX32Calls) {
  EXPECT_TRUE(
      KilledBySigsys(RunFiltered([] { syscall(0x40000000 | SYS_getppid); })));
}

}  // namespace
}  // namespace pyvisor::ptrace_platform
