// seccomp(2) filters on the test's own system calls.
//
// Filters cannot be removed, so every filter installed in-process matches
// only getppid(2) or getpid(2) called with a test-specific magic first
// argument (which those calls ignore), and lets everything else through.
// Filters that kill need a child process and are skipped in the sandbox
// until it has fork(2).

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#include <cstdint>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/signal_util.h"
#include "test/util/test_util.h"

#ifndef SECCOMP_RET_KILL_PROCESS
#define SECCOMP_RET_KILL_PROCESS 0x80000000U
#endif
#ifndef SECCOMP_RET_USER_NOTIF
#define SECCOMP_RET_USER_NOTIF 0x7fc00000U
#endif
#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1
#endif
#ifndef SECCOMP_RET_LOG
#define SECCOMP_RET_LOG 0x7ffc0000U
#endif

namespace pyvisor {
namespace testing {
namespace {

constexpr uint32_t kArgsOffset = offsetof(struct seccomp_data, args);

long Seccomp(unsigned op, unsigned flags, void* args) {
  return syscall(SYS_seccomp, op, flags, args);
}

long InstallFilter(std::vector<sock_filter> prog, unsigned flags = 0) {
  struct sock_fprog fprog = {static_cast<unsigned short>(prog.size()),
                             prog.data()};
  return Seccomp(SECCOMP_SET_MODE_FILTER, flags, &fprog);
}

// A filter that returns `action` for system call `nr` with first argument
// `magic`, and SECCOMP_RET_ALLOW otherwise.
std::vector<sock_filter> MatchFilter(int nr, uint32_t magic, uint32_t action) {
  return {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(nr), 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kArgsOffset),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, magic, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, action),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
}

// Filters that kill, in a child process. These come first so that, run in
// order, the strict mode test sees a process without filters yet.

// Runs fn in a child and returns its wait status.
int RunInChild(void (*fn)()) {
  pid_t pid = fork();
  if (pid == 0) {
    fn();
    _exit(0);
  }
  int status = 0;
  EXPECT_THAT(waitpid(pid, &status, 0), SyscallSucceedsWithValue(pid));
  return status;
}

void InstallOrDie(std::vector<sock_filter> prog) {
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  if (InstallFilter(prog) != 0) _exit(100);
}

TEST(SeccompKillTest, KillProcess) {
  int status = RunInChild([] {
    InstallOrDie(MatchFilter(SYS_getppid, 1, SECCOMP_RET_KILL_PROCESS));
    syscall(SYS_getppid, 1);
    _exit(1);
  });
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGSYS);
}

TEST(SeccompKillTest, KillThreadOfSingleThreadedProcess) {
  int status = RunInChild([] {
    InstallOrDie(MatchFilter(SYS_getppid, 1, SECCOMP_RET_KILL_THREAD));
    syscall(SYS_getppid, 1);
    _exit(1);
  });
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGSYS);
}

TEST(SeccompKillTest, KillIgnoresHandlerAndMask) {
  int status = RunInChild([] {
    signal(SIGSYS, SIG_IGN);
    InstallOrDie(MatchFilter(SYS_getppid, 1, SECCOMP_RET_KILL_PROCESS));
    syscall(SYS_getppid, 1);
    _exit(1);
  });
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGSYS);
}

TEST(SeccompKillTest, TrapWithSigsysBlockedKills) {
  int status = RunInChild([] {
    sigset_t sys;
    sigemptyset(&sys);
    sigaddset(&sys, SIGSYS);
    sigprocmask(SIG_BLOCK, &sys, nullptr);
    InstallOrDie(MatchFilter(SYS_getppid, 1, SECCOMP_RET_TRAP));
    syscall(SYS_getppid, 1);
    _exit(1);
  });
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGSYS);
}

TEST(SeccompKillTest, StrictMode) {
  // A child inherits the filters of the tests that ran before, and a
  // process with filters cannot enter strict mode.
  SKIP_IF(prctl(PR_GET_SECCOMP) != 0);
  int status = RunInChild([] {
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_STRICT, 0, nullptr) != 0) {
      _exit(100);
    }
    // write is allowed; getpid is not.
    if (syscall(SYS_write, 1, "", 0) != 0) syscall(SYS_exit, 101);
    syscall(SYS_getpid);
    syscall(SYS_exit, 1);
  });
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
}

TEST(SeccompKillTest, FiltersAreInheritedAcrossFork) {
  int status = RunInChild([] {
    InstallOrDie(MatchFilter(SYS_getppid, 1, SECCOMP_RET_ERRNO | 77));
    pid_t grandchild = fork();
    if (grandchild == 0) {
      _exit(syscall(SYS_getppid, 1) == -1 && errno == 77 ? 0 : 1);
    }
    int gs;
    waitpid(grandchild, &gs, 0);
    _exit(WIFEXITED(gs) ? WEXITSTATUS(gs) : 2);
  });
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

class SeccompTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_THAT(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), SyscallSucceeds());
  }
};

TEST_F(SeccompTest, ErrnoAction) {
  constexpr uint32_t kMagic = 0x5ec0001;
  ASSERT_THAT(InstallFilter(MatchFilter(SYS_getppid, kMagic,
                                        SECCOMP_RET_ERRNO | 42)),
              SyscallSucceeds());
  EXPECT_THAT(syscall(SYS_getppid, kMagic), SyscallFailsWithErrno(42));
  // Anything else runs.
  EXPECT_THAT(syscall(SYS_getppid, kMagic + 1),
              SyscallSucceedsWithValue(getppid()));
  EXPECT_THAT(prctl(PR_GET_SECCOMP), SyscallSucceedsWithValue(2));
}

TEST_F(SeccompTest, ErrnoIsCappedAtMaxErrno) {
  constexpr uint32_t kMagic = 0x5ec0002;
  ASSERT_THAT(InstallFilter(MatchFilter(SYS_getppid, kMagic,
                                        SECCOMP_RET_ERRNO | 0xffff)),
              SyscallSucceeds());
  EXPECT_THAT(syscall(SYS_getppid, kMagic), SyscallFailsWithErrno(4095));
}

TEST_F(SeccompTest, ErrnoZeroSkipsTheCallWithSuccess) {
  constexpr uint32_t kMagic = 0x5ec0003;
  ASSERT_THAT(InstallFilter(MatchFilter(SYS_getpid, kMagic, SECCOMP_RET_ERRNO)),
              SyscallSucceeds());
  EXPECT_THAT(syscall(SYS_getpid, kMagic), SyscallSucceedsWithValue(0));
  EXPECT_THAT(syscall(SYS_getpid, 0), SyscallSucceedsWithValue(getpid()));
}

struct TrapSeen {
  int count;
  int signo;
  int code;
  int errno_value;
  int syscall_nr;
  unsigned arch;
  void* call_addr;
  int64_t rax;
};
TrapSeen trap_seen;

// async-signal-safe: copies what it is given.
void TrapHandler(int signo, siginfo_t* info, void* uc) {
  trap_seen.count++;
  trap_seen.signo = signo;
  trap_seen.code = info->si_code;
  trap_seen.errno_value = info->si_errno;
  trap_seen.syscall_nr = info->si_syscall;
  trap_seen.arch = info->si_arch;
  trap_seen.call_addr = info->si_call_addr;
  trap_seen.rax = static_cast<ucontext_t*>(uc)->uc_mcontext.gregs[REG_RAX];
}

TEST_F(SeccompTest, TrapSendsSigsys) {
  constexpr uint32_t kMagic = 0x5ec0004;
  memset(&trap_seen, 0, sizeof(trap_seen));
  struct sigaction act = {};
  act.sa_sigaction = TrapHandler;
  act.sa_flags = SA_SIGINFO;
  sigemptyset(&act.sa_mask);
  ScopedSigaction action(SIGSYS, act);
  sigset_t sys = SignalSet({SIGSYS});
  ScopedSignalMask unblock(SIG_UNBLOCK, sys);
  ASSERT_THAT(InstallFilter(MatchFilter(SYS_getppid, kMagic,
                                        SECCOMP_RET_TRAP | 0x123)),
              SyscallSucceeds());
  // The call is skipped with its number left in rax.
  EXPECT_EQ(syscall(SYS_getppid, kMagic), SYS_getppid);
  ASSERT_EQ(trap_seen.count, 1);
  EXPECT_EQ(trap_seen.signo, SIGSYS);
  EXPECT_EQ(trap_seen.code, SYS_SECCOMP);
  EXPECT_EQ(trap_seen.errno_value, 0x123);
  EXPECT_EQ(trap_seen.syscall_nr, SYS_getppid);
  EXPECT_EQ(trap_seen.arch, AUDIT_ARCH_X86_64);
  EXPECT_NE(trap_seen.call_addr, nullptr);
  EXPECT_EQ(trap_seen.rax, SYS_getppid);
}

TEST_F(SeccompTest, TraceWithoutTracerIsEnosys) {
  constexpr uint32_t kMagic = 0x5ec0005;
  ASSERT_THAT(InstallFilter(MatchFilter(SYS_getppid, kMagic,
                                        SECCOMP_RET_TRACE | 1)),
              SyscallSucceeds());
  EXPECT_THAT(syscall(SYS_getppid, kMagic), SyscallFailsWithErrno(ENOSYS));
}

TEST_F(SeccompTest, UserNotifWithoutListenerIsEnosys) {
  constexpr uint32_t kMagic = 0x5ec0006;
  ASSERT_THAT(InstallFilter(MatchFilter(SYS_getppid, kMagic,
                                        SECCOMP_RET_USER_NOTIF)),
              SyscallSucceeds());
  EXPECT_THAT(syscall(SYS_getppid, kMagic), SyscallFailsWithErrno(ENOSYS));
}

TEST_F(SeccompTest, LogRunsTheCall) {
  constexpr uint32_t kMagic = 0x5ec0007;
  ASSERT_THAT(InstallFilter(MatchFilter(SYS_getppid, kMagic, SECCOMP_RET_LOG)),
              SyscallSucceeds());
  EXPECT_THAT(syscall(SYS_getppid, kMagic), SyscallSucceedsWithValue(getppid()));
}

TEST_F(SeccompTest, StrongestActionWins) {
  constexpr uint32_t kMagic = 0x5ec0008;
  ASSERT_THAT(InstallFilter(MatchFilter(SYS_getppid, kMagic,
                                        SECCOMP_RET_ERRNO | 7)),
              SyscallSucceeds());
  ASSERT_THAT(InstallFilter(MatchFilter(SYS_getppid, kMagic,
                                        SECCOMP_RET_TRACE | 1)),
              SyscallSucceeds());
  // ERRNO takes precedence over TRACE, whatever the order.
  EXPECT_THAT(syscall(SYS_getppid, kMagic), SyscallFailsWithErrno(7));
}

TEST_F(SeccompTest, NewestFilterWinsTies) {
  constexpr uint32_t kMagic = 0x5ec0009;
  ASSERT_THAT(InstallFilter(MatchFilter(SYS_getppid, kMagic,
                                        SECCOMP_RET_ERRNO | 1)),
              SyscallSucceeds());
  ASSERT_THAT(InstallFilter(MatchFilter(SYS_getppid, kMagic,
                                        SECCOMP_RET_ERRNO | 2)),
              SyscallSucceeds());
  EXPECT_THAT(syscall(SYS_getppid, kMagic), SyscallFailsWithErrno(2));
}

// The interpreter: arithmetic, scratch memory, registers and jumps, with
// the result returned as an errno.
TEST_F(SeccompTest, Interpreter) {
  constexpr uint32_t kMagic = 0x5ec000a;
  // For args[1] = x: errno = (((((x * 3 + 7) << 2) >> 1) ^ 0x55) | 0x100) & 0x3ff,
  // minus 1 if arch is x86-64 (it is), computed through X and scratch.
  std::vector<sock_filter> prog = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kArgsOffset),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kMagic, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kArgsOffset + 8),
      BPF_STMT(BPF_ST, 3),
      BPF_STMT(BPF_ALU | BPF_MUL | BPF_K, 3),
      BPF_STMT(BPF_ALU | BPF_ADD | BPF_K, 7),
      BPF_STMT(BPF_LDX | BPF_IMM, 2),
      BPF_STMT(BPF_ALU | BPF_LSH | BPF_X, 0),
      BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 1),
      BPF_STMT(BPF_ALU | BPF_XOR | BPF_K, 0x55),
      BPF_STMT(BPF_ALU | BPF_OR | BPF_K, 0x100),
      BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x3ff),
      BPF_STMT(BPF_MISC | BPF_TAX, 0),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 2),
      BPF_STMT(BPF_MISC | BPF_TXA, 0),
      BPF_STMT(BPF_ALU | BPF_SUB | BPF_K, 1),
      BPF_STMT(BPF_ALU | BPF_OR | BPF_K, SECCOMP_RET_ERRNO),
      BPF_STMT(BPF_RET | BPF_A, 0),
  };
  ASSERT_THAT(InstallFilter(prog), SyscallSucceeds());
  for (uint32_t x : {0u, 1u, 5u, 100u, 12345u}) {
    uint32_t want = (((((x * 3 + 7) << 2) >> 1) ^ 0x55) | 0x100) & 0x3ff;
    EXPECT_THAT(syscall(SYS_getppid, kMagic, x), SyscallFailsWithErrno(want - 1))
        << "x=" << x;
  }
}

TEST_F(SeccompTest, HighArgumentWords) {
  constexpr uint32_t kMagic = 0x5ec000b;
  std::vector<sock_filter> prog = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 5),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kArgsOffset),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kMagic, 0, 3),
      // The high half of args[1].
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kArgsOffset + 12),
      BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, 0x10, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 9),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  ASSERT_THAT(InstallFilter(prog), SyscallSucceeds());
  EXPECT_THAT(syscall(SYS_getppid, kMagic, 0x11ULL << 32),
              SyscallFailsWithErrno(9));
  EXPECT_THAT(syscall(SYS_getppid, kMagic, 0x10ULL << 32),
              SyscallSucceedsWithValue(getppid()));
}

TEST_F(SeccompTest, TsyncSingleThreadSucceeds) {
  constexpr uint32_t kMagic = 0x5ec000c;
  EXPECT_THAT(InstallFilter(MatchFilter(SYS_getppid, kMagic,
                                        SECCOMP_RET_ERRNO | 3),
                            SECCOMP_FILTER_FLAG_TSYNC),
              SyscallSucceedsWithValue(0));
  EXPECT_THAT(syscall(SYS_getppid, kMagic), SyscallFailsWithErrno(3));
}

TEST_F(SeccompTest, PrctlInstallsFilter) {
  constexpr uint32_t kMagic = 0x5ec000d;
  std::vector<sock_filter> prog =
      MatchFilter(SYS_getppid, kMagic, SECCOMP_RET_ERRNO | 4);
  struct sock_fprog fprog = {static_cast<unsigned short>(prog.size()),
                             prog.data()};
  ASSERT_THAT(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog),
              SyscallSucceeds());
  EXPECT_THAT(syscall(SYS_getppid, kMagic), SyscallFailsWithErrno(4));
  EXPECT_THAT(prctl(PR_SET_SECCOMP, 3, &fprog), SyscallFailsWithErrno(EINVAL));
}

TEST_F(SeccompTest, StrictModeAfterFilterIsEinval) {
  constexpr uint32_t kMagic = 0x5ec000e;
  ASSERT_THAT(InstallFilter(MatchFilter(SYS_getppid, kMagic,
                                        SECCOMP_RET_ERRNO | 5)),
              SyscallSucceeds());
  EXPECT_THAT(Seccomp(SECCOMP_SET_MODE_STRICT, 0, nullptr),
              SyscallFailsWithErrno(EINVAL));
}

TEST_F(SeccompTest, InvalidPrograms) {
  sock_filter ret_allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  struct Case {
    const char* what;
    std::vector<sock_filter> prog;
  } cases[] = {
      {"empty", {}},
      {"no final return",
       {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0)}},
      {"jump past the end",
       {BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 5, 0), ret_allow}},
      {"ja past the end", {BPF_STMT(BPF_JMP | BPF_JA, 1), ret_allow}},
      {"unaligned load", {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 1), ret_allow}},
      {"load past seccomp_data",
       {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 64), ret_allow}},
      {"half-word load", {BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 0), ret_allow}},
      {"indirect load", {BPF_STMT(BPF_LD | BPF_W | BPF_IND, 0), ret_allow}},
      {"unwritten scratch", {BPF_STMT(BPF_LD | BPF_MEM, 2), ret_allow}},
      {"scratch index", {BPF_STMT(BPF_ST, 16), ret_allow}},
      {"division by zero", {BPF_STMT(BPF_ALU | BPF_DIV | BPF_K, 0), ret_allow}},
      {"return x", {BPF_STMT(BPF_RET | BPF_X, 0)}},
      {"unknown opcode", {BPF_STMT(0xff, 0), ret_allow}},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(InstallFilter(c.prog), SyscallFailsWithErrno(EINVAL)) << c.what;
  }
  std::vector<sock_filter> too_long(4097, ret_allow);
  EXPECT_THAT(InstallFilter(too_long), SyscallFailsWithErrno(EINVAL));
}

TEST_F(SeccompTest, BadPointersAreEfault) {
  EXPECT_THAT(Seccomp(SECCOMP_SET_MODE_FILTER, 0, reinterpret_cast<void*>(8)),
              SyscallFailsWithErrno(EFAULT));
  struct sock_fprog fprog = {1, reinterpret_cast<sock_filter*>(8)};
  EXPECT_THAT(Seccomp(SECCOMP_SET_MODE_FILTER, 0, &fprog),
              SyscallFailsWithErrno(EFAULT));
}

TEST_F(SeccompTest, UnknownFlagsAndOperationsAreEinval) {
  std::vector<sock_filter> prog = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
  EXPECT_THAT(InstallFilter(prog, 1u << 20), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(Seccomp(1234, 0, nullptr), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(Seccomp(SECCOMP_SET_MODE_STRICT, 1, nullptr),
              SyscallFailsWithErrno(EINVAL));
}

TEST_F(SeccompTest, GetActionAvail) {
  for (uint32_t action : {SECCOMP_RET_KILL_PROCESS, SECCOMP_RET_KILL_THREAD,
                          SECCOMP_RET_TRAP, SECCOMP_RET_ERRNO, SECCOMP_RET_TRACE,
                          SECCOMP_RET_LOG, SECCOMP_RET_ALLOW}) {
    EXPECT_THAT(Seccomp(SECCOMP_GET_ACTION_AVAIL, 0, &action), SyscallSucceeds())
        << std::hex << action;
  }
  uint32_t unknown = 0x7ffe0000;
  EXPECT_THAT(Seccomp(SECCOMP_GET_ACTION_AVAIL, 0, &unknown),
              SyscallFailsWithErrno(EOPNOTSUPP));
  uint32_t allow = SECCOMP_RET_ALLOW;
  EXPECT_THAT(Seccomp(SECCOMP_GET_ACTION_AVAIL, 1, &allow),
              SyscallFailsWithErrno(EINVAL));
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
