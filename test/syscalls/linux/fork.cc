// fork(2), vfork(2), clone(2) and clone3(2): what the child shares, the
// words the kernel writes for it, and the flag combinations Linux refuses.

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <memory>
#include <functional>
#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/multiprocess_util.h"
#include "test/util/test_util.h"

#ifndef CLONE_CLEAR_SIGHAND
#define CLONE_CLEAR_SIGHAND 0x100000000ULL
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

namespace pyvisor {
namespace testing {
namespace {

constexpr size_t kStackSize = 64 * 1024;

// struct clone_args, as clone3(2) documents it.
struct CloneArgs {
  uint64_t flags;
  uint64_t pidfd;
  uint64_t child_tid;
  uint64_t parent_tid;
  uint64_t exit_signal;
  uint64_t stack;
  uint64_t stack_size;
  uint64_t tls;
  uint64_t set_tid;
  uint64_t set_tid_size;
  uint64_t cgroup;
};

long Clone3(CloneArgs* args, size_t size = sizeof(CloneArgs)) {
  return syscall(SYS_clone3, args, size);
}

// The children below return from the system call on the parent's stack
// (vfork style), so they must not use the stack at all: these helpers
// create them and make them exit (or exec) in the same few instructions.

// RawVforkExit calls vfork(2); the child exits with code. Returns the
// child's pid or -errno.
long RawVforkExit(int code) {
  long ret;
  asm volatile(
      "syscall\n"
      "test %%rax, %%rax\n"
      "jnz 1f\n"
      "mov %[code], %%edi\n"
      "mov $60, %%eax\n"
      "syscall\n"
      "1:\n"
      : "=a"(ret)
      : "a"(SYS_vfork), [code] "r"(code)
      : "rcx", "r11", "rdi", "memory");
  return ret;
}

// Clone3Exit calls clone3(args); the child exits with code.
long Clone3Exit(CloneArgs* args, int code) {
  long ret;
  asm volatile(
      "syscall\n"
      "test %%rax, %%rax\n"
      "jnz 1f\n"
      "mov %[code], %%edi\n"
      "mov $60, %%eax\n"
      "syscall\n"
      "1:\n"
      : "=a"(ret)
      : "a"(SYS_clone3), "D"(args), "S"(sizeof(CloneArgs)), [code] "r"(code)
      : "rcx", "r11", "memory");
  return ret;
}

// Clone3Exec calls clone3(args); the child execs path and exits with 127
// if that fails.
long Clone3Exec(CloneArgs* args, const char* path, char* const* argv,
                char* const* envp) {
  long ret;
  register char* const* r10 asm("r10") = envp;
  asm volatile(
      "syscall\n"
      "test %%rax, %%rax\n"
      "jnz 1f\n"
      "mov %[path], %%rdi\n"
      "mov %[argv], %%rsi\n"
      "mov %%r10, %%rdx\n"
      "mov $59, %%eax\n"
      "syscall\n"
      "mov $127, %%edi\n"
      "mov $60, %%eax\n"
      "syscall\n"
      "1:\n"
      : "=a"(ret)
      : "a"(SYS_clone3), "D"(args), "S"(sizeof(CloneArgs)), [path] "r"(path),
        [argv] "r"(argv), "r"(r10)
      : "rcx", "r11", "rdx", "memory");
  return ret;
}

int ExitStatusOf(pid_t pid) {
  const int status = WaitForStatus(pid);
  EXPECT_TRUE(WIFEXITED(status)) << "status " << std::hex << status;
  return WEXITSTATUS(status);
}

TEST(ForkTest, ChildReturnsZeroAndParentGetsItsPid) {
  const pid_t parent = getpid();
  const pid_t pid = syscall(SYS_fork);
  if (pid == 0) {
    syscall(SYS_exit_group, getppid() == parent ? 0 : 1);
  }
  ASSERT_THAT(pid, SyscallSucceeds());
  EXPECT_EQ(ExitStatusOf(pid), 0);
}

TEST(ForkTest, ChildMemoryIsACopy) {
  volatile int value = 1;
  const pid_t pid = syscall(SYS_fork);
  if (pid == 0) {
    value = 2;
    syscall(SYS_exit_group, value);
  }
  ASSERT_THAT(pid, SyscallSucceeds());
  EXPECT_EQ(ExitStatusOf(pid), 2);
  EXPECT_EQ(value, 1);
}

TEST(ForkTest, ForkInALoop) {
  // Every round the parent takes its copy-on-write faults at the same
  // places: that is progress, not a fault that keeps repeating.
  for (int i = 0; i < 30; i++) {
    const pid_t pid = syscall(SYS_fork);
    if (pid == 0) {
      syscall(SYS_exit_group, i % 7);
    }
    ASSERT_THAT(pid, SyscallSucceeds());
    ASSERT_EQ(ExitStatusOf(pid), i % 7) << "round " << i;
  }
}

TEST(ForkTest, OnlyTheCallingThreadIsCopied) {
  std::atomic<pid_t> other{0};
  std::atomic<bool> done{false};
  std::thread t([&] {
    other = syscall(SYS_gettid);
    while (!done) sched_yield();
  });
  while (other == 0) sched_yield();
  const pid_t pid = syscall(SYS_fork);
  if (pid == 0) {
    // The other thread does not exist in the child.
    const long r = syscall(SYS_tgkill, syscall(SYS_getpid), other.load(), 0);
    syscall(SYS_exit_group, r == -1 && errno == ESRCH ? 0 : 1);
  }
  ASSERT_THAT(pid, SyscallSucceeds());
  EXPECT_EQ(ExitStatusOf(pid), 0);
  done = true;
  t.join();
}

TEST(ForkTest, MaskAndHandlersAreInheritedPendingSignalsAreNot) {
  struct sigaction sa = {};
  sa.sa_handler = [](int) {};
  struct sigaction old;
  ASSERT_THAT(sigaction(SIGUSR1, &sa, &old), SyscallSucceeds());
  sigset_t set, oldset;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  ASSERT_THAT(sigprocmask(SIG_BLOCK, &set, &oldset), SyscallSucceeds());
  ASSERT_THAT(syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGUSR1),
              SyscallSucceeds());
  const pid_t pid = syscall(SYS_fork);
  if (pid == 0) {
    sigset_t pending, mask;
    sigpending(&pending);
    sigprocmask(SIG_BLOCK, nullptr, &mask);
    struct sigaction cur;
    sigaction(SIGUSR1, nullptr, &cur);
    int bad = 0;
    if (sigismember(&pending, SIGUSR1)) bad |= 1;
    if (!sigismember(&mask, SIGUSR1)) bad |= 2;
    if (cur.sa_handler != sa.sa_handler) bad |= 4;
    syscall(SYS_exit_group, bad);
  }
  ASSERT_THAT(pid, SyscallSucceeds());
  EXPECT_EQ(ExitStatusOf(pid), 0);
  sigset_t pending;
  sigpending(&pending);
  EXPECT_TRUE(sigismember(&pending, SIGUSR1));
  sigprocmask(SIG_SETMASK, &oldset, nullptr);
  sigaction(SIGUSR1, &old, nullptr);
}

TEST(ForkTest, ChildCanForkAndExec) {
  const pid_t pid = syscall(SYS_fork);
  if (pid == 0) {
    const pid_t grandchild = syscall(SYS_fork);
    if (grandchild == 0) {
      const std::string path = HelperPath();
      char action[] = "PV_ACTION=exit=21";
      char* envp[] = {action, nullptr};
      char* argv[] = {const_cast<char*>(path.c_str()), nullptr};
      syscall(SYS_execve, path.c_str(), argv, envp);
      syscall(SYS_exit_group, 127);
    }
    int status = 0;
    syscall(SYS_wait4, grandchild, &status, 0, nullptr);
    syscall(SYS_exit_group, WIFEXITED(status) ? WEXITSTATUS(status) : 99);
  }
  ASSERT_THAT(pid, SyscallSucceeds());
  EXPECT_EQ(ExitStatusOf(pid), 21);
}

TEST(VforkTest, ChildSharesMemoryAndParentWaitsForItsExit) {
  volatile int value = 1;
  const pid_t pid = VforkRun([&]() -> int {
    value = 2;
    return 5;
  });
  ASSERT_THAT(pid, SyscallSucceeds());
  // The child has exited (or the parent would still be suspended): its
  // write is visible.
  EXPECT_EQ(value, 2);
  EXPECT_EQ(ExitStatusOf(pid), 5);
}

TEST(VforkTest, ParentResumesWhenChildExecs) {
  HelperSpec spec;
  spec.action = "pause";
  const pid_t pid = SpawnHelper(spec);
  ASSERT_THAT(pid, SyscallSucceeds());
  // The helper pauses: we run because it exec'd, not because it exited.
  int status;
  EXPECT_THAT(waitpid(pid, &status, WNOHANG), SyscallSucceedsWithValue(0));
  ASSERT_THAT(kill(pid, SIGKILL), SyscallSucceeds());
  status = WaitForStatus(pid);
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
}

TEST(VforkTest, RawVforkSyscall) {
  // vfork(2) itself: the child runs on the parent's stack, so it exits
  // straight away without touching the stack.
  EXPECT_EQ(ExitStatusOf(RawVforkExit(9)), 9);
}

TEST(CloneTest, RefusedFlagCombinations) {
  struct Case {
    unsigned long flags;
    int err;
  } cases[] = {
      {CLONE_THREAD, EINVAL},                  // THREAD needs SIGHAND
      {CLONE_SIGHAND, EINVAL},                 // SIGHAND needs VM
      {CLONE_THREAD | CLONE_SIGHAND, EINVAL},  // ... and so does THREAD
      {CLONE_NEWNS | CLONE_FS, EINVAL},
      {CLONE_NEWUSER | CLONE_FS, EINVAL},
      {CLONE_PIDFD | CLONE_DETACHED, EINVAL},
      // clone returns the pidfd through parent_tid.
      {CLONE_PIDFD | CLONE_PARENT_SETTID, EINVAL},
      {CLONE_THREAD | CLONE_SIGHAND | CLONE_VM | CLONE_NEWPID, EINVAL},
  };
  for (const Case& c : cases) {
    int word = 0;
    EXPECT_THAT(syscall(SYS_clone, c.flags | SIGCHLD, nullptr, &word, &word, 0),
                SyscallFailsWithErrno(c.err))
        << "flags " << std::hex << c.flags;
  }
}

TEST(CloneTest, TlsOutsideUserSpaceIsEperm) {
  EXPECT_THAT(syscall(SYS_clone, CLONE_VM | CLONE_VFORK | CLONE_SETTLS | SIGCHLD,
                      nullptr, nullptr, nullptr, 0xffff800000000000ul),
              SyscallFailsWithErrno(EPERM));
}

TEST(CloneTest, NewNamespaceWithoutCapSysAdminIsEperm) {
  // Capabilities belong to a thread: drop them in one.
  std::thread t([] {
    ASSERT_THAT(syscall(SYS_setresuid, 65534, 65534, 65534), SyscallSucceeds());
    EXPECT_THAT(syscall(SYS_clone, CLONE_NEWUTS | SIGCHLD, nullptr, nullptr,
                        nullptr, 0),
                SyscallFailsWithErrno(EPERM));
    EXPECT_THAT(syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, nullptr, nullptr,
                        nullptr, 0),
                SyscallFailsWithErrno(EPERM));
  });
  t.join();
}

// Runs fn in a child created by raw clone with flags on a fresh stack and
// returns the child's pid.
struct RawChild {
  std::function<int()> fn;
  static int Entry(void* arg) {
    return static_cast<RawChild*>(arg)->fn();
  }
};

TEST(CloneTest, SettidWordsHoldTheChildTid) {
  std::unique_ptr<char[]> stack(new char[kStackSize]);
  pid_t ptid = 0;
  pid_t ctid = 0;
  pid_t seen_in_child = 0;
  RawChild child{[&]() -> int {
    seen_in_child = syscall(SYS_gettid);
    return 0;
  }};
  const pid_t pid =
      clone(RawChild::Entry, stack.get() + kStackSize,
            CLONE_VM | CLONE_VFORK | CLONE_PARENT_SETTID | CLONE_CHILD_SETTID |
                SIGCHLD,
            &child, &ptid, nullptr, &ctid);
  ASSERT_THAT(pid, SyscallSucceeds());
  EXPECT_EQ(ptid, pid);
  EXPECT_EQ(ctid, pid);
  EXPECT_EQ(seen_in_child, pid);
  EXPECT_EQ(ExitStatusOf(pid), 0);
}

TEST(CloneTest, ChildCleartidIsZeroedAndWokenAtExit) {
  std::unique_ptr<char[]> stack(new char[kStackSize]);
  // CLONE_CHILD_SETTID writes the tid first, so the word is known to be set
  // before the child can exit.
  std::atomic<pid_t> ctid{-1};
  RawChild child{[]() -> int { return 0; }};
  const pid_t pid =
      clone(RawChild::Entry, stack.get() + kStackSize,
            CLONE_VM | CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD,
            &child, nullptr, nullptr, &ctid);
  ASSERT_THAT(pid, SyscallSucceeds());
  // Wait as a thread library's join does.
  for (;;) {
    const pid_t v = ctid.load();
    if (v == 0) break;
    syscall(SYS_futex, &ctid, FUTEX_WAIT, v, nullptr, nullptr, 0);
  }
  EXPECT_EQ(ctid.load(), 0);
  EXPECT_EQ(ExitStatusOf(pid), 0);
}

TEST(CloneTest, SettlsSetsTheChildFsBase) {
  std::unique_ptr<char[]> stack(new char[kStackSize]);
  alignas(64) static char tls_block[256];
  uint64_t seen = 0;
  RawChild child{[&]() -> int {
    // The child's thread pointer is tls_block: touch no TLS (errno) here.
    syscall(SYS_arch_prctl, 0x1003 /* ARCH_GET_FS */, &seen);
    return 0;
  }};
  const pid_t pid = clone(RawChild::Entry, stack.get() + kStackSize,
                          CLONE_VM | CLONE_VFORK | CLONE_SETTLS | SIGCHLD,
                          &child, nullptr, tls_block, nullptr);
  ASSERT_THAT(pid, SyscallSucceeds());
  EXPECT_EQ(seen, reinterpret_cast<uint64_t>(tls_block));
  EXPECT_EQ(ExitStatusOf(pid), 0);
}

TEST(CloneTest, ParentFlagMakesASibling) {
  // The test process may be a namespace init, which cannot use
  // CLONE_PARENT: do it from a child, whose sibling is then our child.
  const pid_t me = getpid();
  pid_t grandchild = 0;
  pid_t grandchild_ppid = 0;
  std::unique_ptr<char[]> stack(new char[kStackSize]);
  RawChild inner{[&]() -> int {
    grandchild_ppid = syscall(SYS_getppid);
    return 6;
  }};
  const pid_t child = VforkRun([&]() -> int {
    grandchild = clone(RawChild::Entry, stack.get() + kStackSize,
                       CLONE_VM | CLONE_VFORK | CLONE_PARENT, &inner);
    return grandchild > 0 ? 0 : 1;
  });
  ASSERT_THAT(child, SyscallSucceeds());
  EXPECT_EQ(ExitStatusOf(child), 0);
  ASSERT_GT(grandchild, 0);
  EXPECT_EQ(grandchild_ppid, me);
  // CLONE_PARENT children inherit the exit signal of their creator
  // (SIGCHLD here), so a plain wait sees them.
  EXPECT_EQ(ExitStatusOf(grandchild), 6);
}

TEST(CloneTest, ChildWithoutSigchldIsACloneChild) {
  const pid_t pid = VforkRun([]() -> int { return 4; }, /*flags=*/0);
  ASSERT_THAT(pid, SyscallSucceeds());
  int status;
  EXPECT_THAT(waitpid(pid, &status, 0), SyscallFailsWithErrno(ECHILD));
  EXPECT_THAT(waitpid(pid, &status, __WCLONE), SyscallSucceedsWithValue(pid));
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 4);
}

TEST(CloneTest, ExecMakesACloneChildOrdinary) {
  // After execve the child reports with SIGCHLD, whatever clone said.
  HelperSpec spec;
  spec.action = "pause";
  spec.exit_signal = 0;
  const pid_t pid = SpawnHelper(spec);
  ASSERT_THAT(pid, SyscallSucceeds());
  int status;
  EXPECT_THAT(waitpid(pid, &status, WNOHANG), SyscallSucceedsWithValue(0));
  EXPECT_THAT(waitpid(pid, &status, __WCLONE | WNOHANG),
              SyscallFailsWithErrno(ECHILD));
  ASSERT_THAT(kill(pid, SIGKILL), SyscallSucceeds());
  EXPECT_THAT(waitpid(pid, &status, 0), SyscallSucceedsWithValue(pid));
  EXPECT_TRUE(WIFSIGNALED(status));
}

TEST(CloneTest, PidfdIsReturnedThroughParentTid) {
  std::unique_ptr<char[]> stack(new char[kStackSize]);
  int pidfd = -1;
  RawChild child{[]() -> int { return 3; }};
  const pid_t pid = clone(RawChild::Entry, stack.get() + kStackSize,
                          CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD,
                          &child, &pidfd);
  ASSERT_THAT(pid, SyscallSucceeds());
  ASSERT_GE(pidfd, 0);
  EXPECT_THAT(fcntl(pidfd, F_GETFD), SyscallSucceedsWithValue(FD_CLOEXEC));
  siginfo_t info = {};
  ASSERT_THAT(waitid(static_cast<idtype_t>(P_PIDFD), pidfd, &info, WEXITED),
              SyscallSucceeds());
  EXPECT_EQ(info.si_pid, pid);
  EXPECT_EQ(info.si_code, CLD_EXITED);
  EXPECT_EQ(info.si_status, 3);
  close(pidfd);
}

TEST(CloneTest, SignalHandlersAreCopiedWithoutClonesighand) {
  struct sigaction sa = {};
  sa.sa_handler = SIG_IGN;
  struct sigaction old;
  ASSERT_THAT(sigaction(SIGUSR2, &sa, &old), SyscallSucceeds());
  bool child_saw_ignore = false;
  const pid_t pid = VforkRun([&]() -> int {
    struct sigaction cur;
    syscall(SYS_rt_sigaction, SIGUSR2, nullptr, &cur, 8);
    child_saw_ignore = cur.sa_handler == SIG_IGN;
    // The child's change must not reach the parent.
    struct sigaction dfl = {};
    dfl.sa_handler = SIG_DFL;
    syscall(SYS_rt_sigaction, SIGUSR2, &dfl, nullptr, 8);
    return 0;
  });
  ASSERT_THAT(pid, SyscallSucceeds());
  EXPECT_EQ(ExitStatusOf(pid), 0);
  EXPECT_TRUE(child_saw_ignore);
  struct sigaction now;
  ASSERT_THAT(sigaction(SIGUSR2, nullptr, &now), SyscallSucceeds());
  EXPECT_EQ(now.sa_handler, SIG_IGN);
  sigaction(SIGUSR2, &old, nullptr);
}

TEST(CloneTest, DescriptorTableIsCopiedWithoutCloneFiles) {
  const int fd = dup(1);
  ASSERT_THAT(fd, SyscallSucceeds());
  const pid_t pid = VforkRun([&]() -> int {
    return syscall(SYS_close, fd) == 0 ? 0 : 1;
  });
  ASSERT_THAT(pid, SyscallSucceeds());
  EXPECT_EQ(ExitStatusOf(pid), 0);
  // Still open here.
  EXPECT_THAT(fcntl(fd, F_GETFD), SyscallSucceeds());
  close(fd);
}

TEST(CloneTest, DescriptorTableIsSharedWithCloneFiles) {
  const int fd = dup(1);
  ASSERT_THAT(fd, SyscallSucceeds());
  const pid_t pid = VforkRun(
      [&]() -> int { return syscall(SYS_close, fd) == 0 ? 0 : 1; },
      CLONE_FILES | SIGCHLD);
  ASSERT_THAT(pid, SyscallSucceeds());
  EXPECT_EQ(ExitStatusOf(pid), 0);
  EXPECT_THAT(fcntl(fd, F_GETFD), SyscallFailsWithErrno(EBADF));
}

TEST(CloneTest, UmaskIsSharedWithCloneFsOnly) {
  const mode_t old = umask(022);
  pid_t pid = VforkRun([]() -> int {
    syscall(SYS_umask, 077);
    return 0;
  });
  ASSERT_THAT(pid, SyscallSucceeds());
  EXPECT_EQ(ExitStatusOf(pid), 0);
  EXPECT_EQ(umask(022), 022);
  pid = VforkRun(
      []() -> int {
        syscall(SYS_umask, 077);
        return 0;
      },
      CLONE_FS | SIGCHLD);
  ASSERT_THAT(pid, SyscallSucceeds());
  EXPECT_EQ(ExitStatusOf(pid), 0);
  EXPECT_EQ(umask(old), 077);
}

TEST(Clone3Test, SizeChecks) {
  CloneArgs args = {};
  args.exit_signal = SIGCHLD;
  EXPECT_THAT(Clone3(&args, 63), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(Clone3(&args, 4097), SyscallFailsWithErrno(E2BIG));
  // A larger struct is accepted only if the part this kernel does not know
  // is zero.
  struct {
    CloneArgs args;
    uint64_t extra;
  } big = {};
  big.args.exit_signal = SIGCHLD;
  big.args.flags = CLONE_VM | CLONE_VFORK;
  big.extra = 1;
  EXPECT_THAT(Clone3(&big.args, sizeof(big)), SyscallFailsWithErrno(E2BIG));
}

TEST(Clone3Test, RefusedArguments) {
  CloneArgs args = {};
  args.flags = CLONE_VM | CLONE_VFORK;
  args.exit_signal = 65;
  EXPECT_THAT(Clone3(&args), SyscallFailsWithErrno(EINVAL));
  args.exit_signal = SIGCHLD | (1ull << 32);
  EXPECT_THAT(Clone3(&args), SyscallFailsWithErrno(EINVAL));

  args = {};
  args.flags = CLONE_VM | CLONE_SIGHAND | CLONE_THREAD;
  args.exit_signal = SIGCHLD;  // threads have no exit signal
  EXPECT_THAT(Clone3(&args), SyscallFailsWithErrno(EINVAL));

  args = {};
  args.flags = CLONE_VM | CLONE_VFORK | SIGCHLD;  // CSIGNAL bits are invalid
  EXPECT_THAT(Clone3(&args), SyscallFailsWithErrno(EINVAL));

  args = {};
  args.flags = CLONE_VM | CLONE_VFORK | CLONE_DETACHED;
  EXPECT_THAT(Clone3(&args), SyscallFailsWithErrno(EINVAL));

  args = {};
  args.flags = CLONE_VM | CLONE_SIGHAND | CLONE_CLEAR_SIGHAND;
  EXPECT_THAT(Clone3(&args), SyscallFailsWithErrno(EINVAL));

  args = {};
  args.flags = CLONE_VM | CLONE_VFORK;
  args.stack_size = 4096;  // a size without a stack
  EXPECT_THAT(Clone3(&args), SyscallFailsWithErrno(EINVAL));
  args.stack_size = 0;
  args.stack = 0x10000;  // a stack without a size
  EXPECT_THAT(Clone3(&args), SyscallFailsWithErrno(EINVAL));

  args = {};
  args.flags = CLONE_VM | CLONE_VFORK;
  args.set_tid_size = 1;  // without set_tid
  EXPECT_THAT(Clone3(&args), SyscallFailsWithErrno(EINVAL));
  pid_t tid = 0;
  args.set_tid = reinterpret_cast<uint64_t>(&tid);
  args.set_tid_size = 0;  // set_tid without a size
  EXPECT_THAT(Clone3(&args), SyscallFailsWithErrno(EINVAL));
  args.set_tid_size = 33;  // deeper than any namespace nesting
  EXPECT_THAT(Clone3(&args), SyscallFailsWithErrno(EINVAL));
  args.set_tid_size = 1;  // tid 0 is not a tid
  EXPECT_THAT(Clone3(&args), SyscallFailsWithErrno(EINVAL));

  args = {};
  args.flags = CLONE_VM | CLONE_VFORK | CLONE_INTO_CGROUP;
  args.cgroup = 1ull << 32;
  EXPECT_THAT(Clone3(&args), SyscallFailsWithErrno(EINVAL));
  args.cgroup = 0;  // stdin is no cgroup directory
  EXPECT_THAT(Clone3(&args), SyscallFailsWithErrno(EBADF));
}

TEST(Clone3Test, VforkChildExits) {
  CloneArgs args = {};
  args.flags = CLONE_VM | CLONE_VFORK;
  args.exit_signal = SIGCHLD;
  const long pid = Clone3Exit(&args, 8);
  ASSERT_GT(pid, 0) << "errno " << -pid;
  EXPECT_EQ(ExitStatusOf(pid), 8);
}

TEST(Clone3Test, ClearSighandResetsHandlersButKeepsIgnored) {
  struct sigaction sa = {};
  sa.sa_handler = [](int) {};
  struct sigaction old_usr1, old_usr2;
  ASSERT_THAT(sigaction(SIGUSR1, &sa, &old_usr1), SyscallSucceeds());
  sa.sa_handler = SIG_IGN;
  ASSERT_THAT(sigaction(SIGUSR2, &sa, &old_usr2), SyscallSucceeds());
  // Block SIGUSR1 so that the handler, if it were kept, could not matter
  // to the helper; the helper checks the dispositions before anything else.
  CloneArgs args = {};
  args.flags = CLONE_VM | CLONE_VFORK | CLONE_CLEAR_SIGHAND;
  args.exit_signal = SIGCHLD;
  const std::string path = HelperPath();
  char check[] = "PV_CHECK=sig-dfl=10\nsig-ign=12";
  char* envp[] = {check, nullptr};
  char* argv[] = {const_cast<char*>(path.c_str()), nullptr};
  const long pid = Clone3Exec(&args, path.c_str(), argv, envp);
  ASSERT_GT(pid, 0) << "errno " << -pid;
  EXPECT_EQ(ExitStatusOf(pid), 0);
  sigaction(SIGUSR1, &old_usr1, nullptr);
  sigaction(SIGUSR2, &old_usr2, nullptr);
}

TEST(Clone3Test, SetTidChoosesTheChildId) {
  // Find an id nobody uses below pid_max. Natively the host's ids are in
  // use too.
  pid_t pid_max = 32768;
  if (FILE* f = fopen("/proc/sys/kernel/pid_max", "r")) {
    if (fscanf(f, "%d", &pid_max) != 1) pid_max = 32768;
    fclose(f);
  }
  pid_t want = getpid() + 17 < pid_max ? getpid() + 17 : 300;
  while (want < pid_max && (kill(want, 0) == 0 || errno != ESRCH)) want++;
  ASSERT_LT(want, pid_max);
  CloneArgs args = {};
  args.flags = CLONE_VM | CLONE_VFORK;
  args.exit_signal = SIGCHLD;
  args.set_tid = reinterpret_cast<uint64_t>(&want);
  args.set_tid_size = 1;
  const long pid = Clone3Exit(&args, 0);
  ASSERT_EQ(pid, want);
  EXPECT_EQ(ExitStatusOf(pid), 0);
}

TEST(Clone3Test, SetTidInUseIsEexist) {
  pid_t want = getpid();
  CloneArgs args = {};
  args.flags = CLONE_VM | CLONE_VFORK;
  args.exit_signal = SIGCHLD;
  args.set_tid = reinterpret_cast<uint64_t>(&want);
  args.set_tid_size = 1;
  EXPECT_EQ(Clone3Exit(&args, 0), -EEXIST);
}

TEST(Clone3Test, StackAndSizeGiveTheChildStack) {
  std::unique_ptr<char[]> stack(new char[kStackSize]);
  CloneArgs args = {};
  args.flags = CLONE_VM | CLONE_VFORK;
  args.exit_signal = SIGCHLD;
  args.stack = reinterpret_cast<uint64_t>(stack.get());
  args.stack_size = kStackSize;
  uint64_t child_sp = 0;
  uint64_t* out = &child_sp;
  // The child starts on the new stack with no frame to return to: read its
  // stack pointer and exit without touching the stack.
  long ret;
  asm volatile(
      "syscall\n"
      "test %%rax, %%rax\n"
      "jnz 1f\n"
      "mov %%rsp, (%[out])\n"
      "mov $60, %%eax\n"
      "xor %%edi, %%edi\n"
      "syscall\n"
      "1:\n"
      : "=a"(ret)
      : "a"(SYS_clone3), "D"(&args), "S"(sizeof(args)), [out] "r"(out)
      : "rcx", "r11", "memory");
  ASSERT_GT(ret, 0) << "errno " << -ret;
  EXPECT_EQ(child_sp, args.stack + args.stack_size);
  EXPECT_EQ(ExitStatusOf(ret), 0);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
