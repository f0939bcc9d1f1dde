// ptrace(2): attaching (TRACEME, ATTACH, SEIZE), the stops a tracer sees
// with wait, signal injection, memory and register access, syscall stops,
// fork events, single-stepping, and what a tracer's exit does.

#include <elf.h>
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

// The raw system call, so that PEEK requests have the kernel's ABI (the
// word is stored at data) rather than glibc's.
long Ptrace(long req, pid_t pid, uintptr_t addr, uintptr_t data) {
  return syscall(SYS_ptrace, req, pid, addr, data);
}

// Forks a child that runs fn and exits with its result.
pid_t Fork(const std::function<int()>& fn) {
  const pid_t pid = fork();
  if (pid == 0) _exit(fn());
  return pid;
}

// A child that asks to be traced and stops itself with SIGSTOP, then runs
// fn.
pid_t ForkTraced(const std::function<int()>& fn) {
  return Fork([fn] {
    if (ptrace(PTRACE_TRACEME, 0, 0, 0) != 0) return 100;
    raise(SIGSTOP);
    return fn();
  });
}

int WaitStatus(pid_t pid) {
  int status = 0;
  const pid_t got = waitpid(pid, &status, __WALL);
  EXPECT_EQ(got, pid) << strerror(errno);
  return status;
}

void ExpectStopped(pid_t pid, int signo) {
  const int status = WaitStatus(pid);
  ASSERT_TRUE(WIFSTOPPED(status)) << std::hex << status;
  EXPECT_EQ(WSTOPSIG(status), signo);
}

void ExpectExit(pid_t pid, int code) {
  const int status = WaitStatus(pid);
  ASSERT_TRUE(WIFEXITED(status)) << std::hex << status;
  EXPECT_EQ(WEXITSTATUS(status), code);
}

std::string ProcStatusField(pid_t pid, const std::string& name) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + ":", 0) == 0) {
      std::string v = line.substr(name.size() + 1);
      return v.substr(v.find_first_not_of(" \t"));
    }
  }
  return "";
}

TEST(PtraceTest, TracemeReportsSignalAndContSuppressesIt) {
  const pid_t pid = ForkTraced([] {
    raise(SIGUSR1);
    return 7;
  });
  ASSERT_GT(pid, 0);
  ExpectStopped(pid, SIGSTOP);
  ASSERT_EQ(Ptrace(PTRACE_CONT, pid, 0, 0), 0);
  ExpectStopped(pid, SIGUSR1);
  siginfo_t info = {};
  ASSERT_EQ(Ptrace(PTRACE_GETSIGINFO, pid, 0, reinterpret_cast<uintptr_t>(&info)),
            0);
  EXPECT_EQ(info.si_signo, SIGUSR1);
  EXPECT_EQ(info.si_pid, pid);
  // Resumed without the signal: SIGUSR1's default action never runs.
  ASSERT_EQ(Ptrace(PTRACE_CONT, pid, 0, 0), 0);
  ExpectExit(pid, 7);
}

TEST(PtraceTest, ContWithSignalInjectsIt) {
  const pid_t pid = ForkTraced([] { return 7; });
  ASSERT_GT(pid, 0);
  ExpectStopped(pid, SIGSTOP);
  ASSERT_EQ(Ptrace(PTRACE_CONT, pid, 0, SIGTERM), 0);
  const int status = WaitStatus(pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << std::hex << status;
  EXPECT_EQ(WTERMSIG(status), SIGTERM);
}

int g_si_errno = 0;

TEST(PtraceTest, SetSiginfoChangesTheDeliveredSignal) {
  const pid_t pid = ForkTraced([] {
    struct sigaction sa = {};
    sa.sa_sigaction = [](int, siginfo_t* info, void*) {
      g_si_errno = info->si_errno;
    };
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, nullptr);
    raise(SIGUSR1);
    return g_si_errno == 42 ? 0 : 1;
  });
  ASSERT_GT(pid, 0);
  ExpectStopped(pid, SIGSTOP);
  ASSERT_EQ(Ptrace(PTRACE_CONT, pid, 0, 0), 0);
  ExpectStopped(pid, SIGUSR1);
  siginfo_t info = {};
  ASSERT_EQ(Ptrace(PTRACE_GETSIGINFO, pid, 0, reinterpret_cast<uintptr_t>(&info)),
            0);
  info.si_errno = 42;
  ASSERT_EQ(Ptrace(PTRACE_SETSIGINFO, pid, 0, reinterpret_cast<uintptr_t>(&info)),
            0);
  uint64_t mask = 0;
  ASSERT_EQ(Ptrace(PTRACE_GETSIGMASK, pid, sizeof(mask),
                   reinterpret_cast<uintptr_t>(&mask)),
            0);
  // The signal arrives once raise has restored the (empty) mask.
  EXPECT_EQ(mask, 0u);
  EXPECT_EQ(Ptrace(PTRACE_GETSIGMASK, pid, 4, reinterpret_cast<uintptr_t>(&mask)),
            -1);
  EXPECT_EQ(errno, EINVAL);
  ASSERT_EQ(Ptrace(PTRACE_CONT, pid, 0, SIGUSR1), 0);
  ExpectExit(pid, 0);
}

TEST(PtraceTest, RequestsNeedAStoppedTracee) {
  const pid_t pid = Fork([] {
    pause();
    return 0;
  });
  ASSERT_GT(pid, 0);
  // Not traced by us.
  EXPECT_EQ(Ptrace(PTRACE_CONT, pid, 0, 0), -1);
  EXPECT_EQ(errno, ESRCH);
  // Not ourselves.
  EXPECT_EQ(Ptrace(PTRACE_ATTACH, getpid(), 0, 0), -1);
  EXPECT_EQ(errno, EPERM);
  // Seized but running: register access fails with ESRCH.
  ASSERT_EQ(Ptrace(PTRACE_SEIZE, pid, 0, 0), 0);
  struct user_regs_struct regs;
  EXPECT_EQ(Ptrace(PTRACE_GETREGS, pid, 0, reinterpret_cast<uintptr_t>(&regs)),
            -1);
  EXPECT_EQ(errno, ESRCH);
  // A second tracer is refused.
  EXPECT_EQ(Ptrace(PTRACE_ATTACH, pid, 0, 0), -1);
  EXPECT_EQ(errno, EPERM);
  kill(pid, SIGKILL);
  WaitStatus(pid);
}

TEST(PtraceTest, AttachStopsTheTraceeAndDetachLetsItGo) {
  const pid_t pid = Fork([] {
    for (;;) pause();
    return 0;
  });
  ASSERT_GT(pid, 0);
  ASSERT_EQ(Ptrace(PTRACE_ATTACH, pid, 0, 0), 0);
  ExpectStopped(pid, SIGSTOP);
  EXPECT_EQ(ProcStatusField(pid, "TracerPid"), std::to_string(getpid()));
  EXPECT_EQ(ProcStatusField(pid, "State").substr(0, 1), "t");
  ASSERT_EQ(Ptrace(PTRACE_DETACH, pid, 0, 0), 0);
  EXPECT_EQ(ProcStatusField(pid, "TracerPid"), "0");
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  const int status = WaitStatus(pid);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGTERM);
}

TEST(PtraceTest, SeizeInterruptReportsEventStop) {
  const pid_t pid = Fork([] {
    for (;;) pause();
    return 0;
  });
  ASSERT_GT(pid, 0);
  ASSERT_EQ(Ptrace(PTRACE_SEIZE, pid, 0, PTRACE_O_TRACESYSGOOD), 0);
  ASSERT_EQ(Ptrace(PTRACE_INTERRUPT, pid, 0, 0), 0);
  const int status = WaitStatus(pid);
  ASSERT_TRUE(WIFSTOPPED(status)) << std::hex << status;
  EXPECT_EQ(status >> 16, PTRACE_EVENT_STOP);
  EXPECT_EQ(WSTOPSIG(status), SIGTRAP);
  // LISTEN is refused outside of an event stop, accepted in one.
  ASSERT_EQ(Ptrace(PTRACE_CONT, pid, 0, 0), 0);
  EXPECT_EQ(Ptrace(PTRACE_LISTEN, pid, 0, 0), -1);
  EXPECT_EQ(errno, ESRCH);
  ASSERT_EQ(Ptrace(PTRACE_INTERRUPT, pid, 0, 0), 0);
  ExpectStopped(pid, SIGTRAP);
  EXPECT_EQ(Ptrace(PTRACE_LISTEN, pid, 0, 0), 0);
  kill(pid, SIGKILL);
  const int last = WaitStatus(pid);
  EXPECT_TRUE(WIFSIGNALED(last)) << std::hex << last;
}

TEST(PtraceTest, SeizedGroupStopAndListen) {
  const pid_t pid = Fork([] {
    for (;;) pause();
    return 0;
  });
  ASSERT_GT(pid, 0);
  ASSERT_EQ(Ptrace(PTRACE_SEIZE, pid, 0, 0), 0);
  ASSERT_EQ(kill(pid, SIGSTOP), 0);
  // The signal-delivery-stop, then the group-stop once SIGSTOP is let in.
  ExpectStopped(pid, SIGSTOP);
  ASSERT_EQ(Ptrace(PTRACE_CONT, pid, 0, SIGSTOP), 0);
  int status = WaitStatus(pid);
  ASSERT_TRUE(WIFSTOPPED(status)) << std::hex << status;
  EXPECT_EQ(status >> 16, PTRACE_EVENT_STOP);
  EXPECT_EQ(WSTOPSIG(status), SIGSTOP);
  ASSERT_EQ(Ptrace(PTRACE_LISTEN, pid, 0, 0), 0);
  // SIGCONT ends the group stop; the listening tracee traps again.
  ASSERT_EQ(kill(pid, SIGCONT), 0);
  status = WaitStatus(pid);
  ASSERT_TRUE(WIFSTOPPED(status)) << std::hex << status;
  EXPECT_EQ(status >> 16, PTRACE_EVENT_STOP);
  kill(pid, SIGKILL);
  for (;;) {
    status = WaitStatus(pid);
    if (!WIFSTOPPED(status)) break;
  }
  EXPECT_TRUE(WIFSIGNALED(status)) << std::hex << status;
}

long g_word = 0x1122334455667788;

TEST(PtraceTest, PeekAndPokeData) {
  // A read-only private page: POKEDATA writes it anyway, as a debugger
  // writes breakpoints into text.
  void* ro = mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(ro, MAP_FAILED);
  volatile long* ro_word = static_cast<volatile long*>(ro);
  const pid_t pid = ForkTraced([ro_word] {
    if (g_word != 0x0102030405060708) return 1;
    if (*ro_word != 0x55) return 2;
    return 0;
  });
  ASSERT_GT(pid, 0);
  ExpectStopped(pid, SIGSTOP);
  long word = 0;
  ASSERT_EQ(Ptrace(PTRACE_PEEKDATA, pid, reinterpret_cast<uintptr_t>(&g_word),
                   reinterpret_cast<uintptr_t>(&word)),
            0);
  EXPECT_EQ(word, 0x1122334455667788);
  ASSERT_EQ(Ptrace(PTRACE_POKEDATA, pid, reinterpret_cast<uintptr_t>(&g_word),
                   0x0102030405060708),
            0);
  ASSERT_EQ(
      Ptrace(PTRACE_POKETEXT, pid, reinterpret_cast<uintptr_t>(ro), 0x55), 0);
  // Our own copy is untouched.
  EXPECT_EQ(g_word, 0x1122334455667788);
  EXPECT_EQ(*ro_word, 0);
  // An unmapped address fails with EIO.
  EXPECT_EQ(Ptrace(PTRACE_PEEKDATA, pid, 8, reinterpret_cast<uintptr_t>(&word)),
            -1);
  EXPECT_EQ(errno, EIO);
  ASSERT_EQ(Ptrace(PTRACE_CONT, pid, 0, 0), 0);
  ExpectExit(pid, 0);
  munmap(ro, 4096);
}

TEST(PtraceTest, Registers) {
  const pid_t pid = ForkTraced([] { return 0; });
  ASSERT_GT(pid, 0);
  ExpectStopped(pid, SIGSTOP);
  struct user_regs_struct regs;
  ASSERT_EQ(Ptrace(PTRACE_GETREGS, pid, 0, reinterpret_cast<uintptr_t>(&regs)),
            0);
  EXPECT_NE(regs.rip, 0u);
  EXPECT_EQ(regs.cs, 0x33u);
  // The stop follows raise's tgkill.
  EXPECT_EQ(regs.orig_rax, static_cast<unsigned long>(SYS_tgkill));
  long rip = 0;
  ASSERT_EQ(Ptrace(PTRACE_PEEKUSER, pid, offsetof(struct user, regs.rip),
                   reinterpret_cast<uintptr_t>(&rip)),
            0);
  EXPECT_EQ(static_cast<unsigned long>(rip), regs.rip);
  long dr7 = -1;
  ASSERT_EQ(Ptrace(PTRACE_PEEKUSER, pid, offsetof(struct user, u_debugreg[7]),
                   reinterpret_cast<uintptr_t>(&dr7)),
            0);
  EXPECT_EQ(dr7, 0);
  EXPECT_EQ(Ptrace(PTRACE_PEEKUSER, pid, 3, reinterpret_cast<uintptr_t>(&dr7)),
            -1);
  EXPECT_EQ(errno, EIO);

  // POKEUSER and SETREGS change the tracee's registers.
  ASSERT_EQ(Ptrace(PTRACE_POKEUSER, pid, offsetof(struct user, regs.r12),
                   0xabcdef),
            0);
  struct user_regs_struct again;
  ASSERT_EQ(Ptrace(PTRACE_GETREGS, pid, 0, reinterpret_cast<uintptr_t>(&again)),
            0);
  EXPECT_EQ(again.r12, 0xabcdefu);
  again.r13 = 0x1234;
  ASSERT_EQ(Ptrace(PTRACE_SETREGS, pid, 0, reinterpret_cast<uintptr_t>(&again)),
            0);
  ASSERT_EQ(Ptrace(PTRACE_GETREGS, pid, 0, reinterpret_cast<uintptr_t>(&regs)),
            0);
  EXPECT_EQ(regs.r13, 0x1234u);
  // A kernel code segment is refused.
  again.cs = 0x10;
  EXPECT_EQ(Ptrace(PTRACE_SETREGS, pid, 0, reinterpret_cast<uintptr_t>(&again)),
            -1);
  EXPECT_EQ(errno, EIO);

  // Regsets: the general registers and the FPU.
  struct user_regs_struct set_regs;
  struct iovec iov = {&set_regs, sizeof(set_regs)};
  ASSERT_EQ(Ptrace(PTRACE_GETREGSET, pid, NT_PRSTATUS,
                   reinterpret_cast<uintptr_t>(&iov)),
            0);
  EXPECT_EQ(iov.iov_len, sizeof(set_regs));
  EXPECT_EQ(set_regs.rip, regs.rip);
  struct user_fpregs_struct fp;
  ASSERT_EQ(Ptrace(PTRACE_GETFPREGS, pid, 0, reinterpret_cast<uintptr_t>(&fp)),
            0);
  EXPECT_EQ(fp.mxcsr & 0xffc0, 0x1f80u);
  fp.xmm_space[0] = 0x7777;
  ASSERT_EQ(Ptrace(PTRACE_SETFPREGS, pid, 0, reinterpret_cast<uintptr_t>(&fp)),
            0);
  struct user_fpregs_struct fp2;
  iov = {&fp2, sizeof(fp2)};
  ASSERT_EQ(
      Ptrace(PTRACE_GETREGSET, pid, NT_PRFPREG, reinterpret_cast<uintptr_t>(&iov)),
      0);
  EXPECT_EQ(iov.iov_len, sizeof(fp2));
  EXPECT_EQ(fp2.xmm_space[0], 0x7777u);
  alignas(64) char xstate[8192];
  iov = {xstate, sizeof(xstate)};
  ASSERT_EQ(Ptrace(PTRACE_GETREGSET, pid, NT_X86_XSTATE,
                   reinterpret_cast<uintptr_t>(&iov)),
            0);
  EXPECT_GE(iov.iov_len, 576u);
  uint64_t xcr0 = 0;
  memcpy(&xcr0, xstate + 464, sizeof(xcr0));
  EXPECT_EQ(xcr0 & 3, 3u);
  ASSERT_EQ(Ptrace(PTRACE_CONT, pid, 0, 0), 0);
  ExpectExit(pid, 0);
}

// struct ptrace_syscall_info up to its entry member.
struct SyscallInfo {
  uint8_t op;
  uint8_t pad[3];
  uint32_t arch;
  uint64_t instruction_pointer;
  uint64_t stack_pointer;
  uint64_t nr;
  uint64_t args[6];
};

TEST(PtraceTest, SyscallStopsSkipAndReturnValue) {
  const pid_t pid = ForkTraced([] {
    const long r = syscall(SYS_getppid);
    return r == 4242 ? 0 : 1;
  });
  ASSERT_GT(pid, 0);
  ExpectStopped(pid, SIGSTOP);
  ASSERT_EQ(Ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_TRACESYSGOOD), 0);
  bool entry = true;
  for (int i = 0; i < 100; i++) {
    ASSERT_EQ(Ptrace(PTRACE_SYSCALL, pid, 0, 0), 0);
    ExpectStopped(pid, SIGTRAP | 0x80);
    struct user_regs_struct regs;
    ASSERT_EQ(
        Ptrace(PTRACE_GETREGS, pid, 0, reinterpret_cast<uintptr_t>(&regs)), 0);
    if (entry) {
      EXPECT_EQ(regs.rax, static_cast<unsigned long>(-ENOSYS));
      if (regs.orig_rax == SYS_getppid) {
        SyscallInfo info = {};
        ASSERT_EQ(Ptrace(PTRACE_GET_SYSCALL_INFO, pid, sizeof(info),
                         reinterpret_cast<uintptr_t>(&info)),
                  80);
        EXPECT_EQ(info.op, PTRACE_SYSCALL_INFO_ENTRY);
        EXPECT_EQ(info.arch, 0xC000003Eu);
        EXPECT_EQ(info.nr, static_cast<uint64_t>(SYS_getppid));
        // Skip the call, and give it a result at its exit stop.
        regs.orig_rax = -1;
        ASSERT_EQ(
            Ptrace(PTRACE_SETREGS, pid, 0, reinterpret_cast<uintptr_t>(&regs)),
            0);
        ASSERT_EQ(Ptrace(PTRACE_SYSCALL, pid, 0, 0), 0);
        ExpectStopped(pid, SIGTRAP | 0x80);
        ASSERT_EQ(
            Ptrace(PTRACE_GETREGS, pid, 0, reinterpret_cast<uintptr_t>(&regs)),
            0);
        regs.rax = 4242;
        ASSERT_EQ(
            Ptrace(PTRACE_SETREGS, pid, 0, reinterpret_cast<uintptr_t>(&regs)),
            0);
        break;
      }
    }
    entry = !entry;
  }
  ASSERT_EQ(Ptrace(PTRACE_CONT, pid, 0, 0), 0);
  ExpectExit(pid, 0);
}

TEST(PtraceTest, SeccompTraceStopsForTheTracer) {
  const pid_t pid = ForkTraced([] {
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE | 0x42),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof(filter) / sizeof(filter[0]), filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return 10;
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) {
      return 11;
    }
    return syscall(SYS_getppid) == 777 ? 0 : 1;
  });
  ASSERT_GT(pid, 0);
  ExpectStopped(pid, SIGSTOP);
  ASSERT_EQ(Ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_TRACESECCOMP), 0);
  ASSERT_EQ(Ptrace(PTRACE_CONT, pid, 0, 0), 0);
  const int status = WaitStatus(pid);
  ASSERT_TRUE(WIFSTOPPED(status)) << std::hex << status;
  EXPECT_EQ(status >> 8, SIGTRAP | (PTRACE_EVENT_SECCOMP << 8));
  unsigned long msg = 0;
  ASSERT_EQ(
      Ptrace(PTRACE_GETEVENTMSG, pid, 0, reinterpret_cast<uintptr_t>(&msg)), 0);
  EXPECT_EQ(msg, 0x42u);
  struct user_regs_struct regs;
  ASSERT_EQ(Ptrace(PTRACE_GETREGS, pid, 0, reinterpret_cast<uintptr_t>(&regs)),
            0);
  EXPECT_EQ(regs.orig_rax, static_cast<unsigned long>(SYS_getppid));
  // Skip the call with a result of our choosing.
  regs.orig_rax = -1;
  regs.rax = 777;
  ASSERT_EQ(Ptrace(PTRACE_SETREGS, pid, 0, reinterpret_cast<uintptr_t>(&regs)),
            0);
  ASSERT_EQ(Ptrace(PTRACE_CONT, pid, 0, 0), 0);
  ExpectExit(pid, 0);
}

TEST(PtraceTest, ForkEventAutoAttachesTheChild) {
  const pid_t pid = ForkTraced([] {
    const pid_t child = fork();
    if (child == 0) _exit(7);
    int status = 0;
    if (waitpid(child, &status, 0) != child) return 1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 7 ? 0 : 2;
  });
  ASSERT_GT(pid, 0);
  ExpectStopped(pid, SIGSTOP);
  ASSERT_EQ(Ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_TRACEFORK), 0);
  ASSERT_EQ(Ptrace(PTRACE_CONT, pid, 0, 0), 0);
  const int status = WaitStatus(pid);
  ASSERT_TRUE(WIFSTOPPED(status)) << std::hex << status;
  EXPECT_EQ(status >> 8, SIGTRAP | (PTRACE_EVENT_FORK << 8));
  unsigned long msg = 0;
  ASSERT_EQ(
      Ptrace(PTRACE_GETEVENTMSG, pid, 0, reinterpret_cast<uintptr_t>(&msg)), 0);
  const pid_t grandchild = static_cast<pid_t>(msg);
  ASSERT_GT(grandchild, 0);
  // The new child starts traced, in a SIGSTOP signal-delivery-stop.
  ExpectStopped(grandchild, SIGSTOP);
  EXPECT_EQ(ProcStatusField(grandchild, "TracerPid"), std::to_string(getpid()));
  ASSERT_EQ(Ptrace(PTRACE_CONT, grandchild, 0, 0), 0);
  ASSERT_EQ(Ptrace(PTRACE_CONT, pid, 0, 0), 0);
  // Its tracer sees its exit although it is not its parent.
  ExpectExit(grandchild, 7);
  // The parent stops for the SIGCHLD it gets, then exits.
  int status2 = WaitStatus(pid);
  while (WIFSTOPPED(status2)) {
    ASSERT_EQ(Ptrace(PTRACE_CONT, pid, 0, WSTOPSIG(status2)), 0);
    status2 = WaitStatus(pid);
  }
  ASSERT_TRUE(WIFEXITED(status2)) << std::hex << status2;
  EXPECT_EQ(WEXITSTATUS(status2), 0);
}

// Every traced thread's exit is reported once, the process's with its pid
// by the parent's wait, even when the main thread exits first.
TEST(PtraceTest, ThreadExitsReportedOnce) {
  const pid_t pid = ForkTraced([] {
    pthread_t thread;
    pthread_create(
        &thread, nullptr,
        [](void*) -> void* {
          // Outlive the main thread, then end the process.
          for (int i = 0; i < 1000; i++) syscall(SYS_sched_yield);
          syscall(SYS_exit_group, 5);
          return nullptr;
        },
        nullptr);
    syscall(SYS_exit, 0);
    return 0;
  });
  ASSERT_GT(pid, 0);
  ExpectStopped(pid, SIGSTOP);
  ASSERT_EQ(Ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_TRACECLONE), 0);
  ASSERT_EQ(Ptrace(PTRACE_CONT, pid, 0, 0), 0);
  int exits_of_pid = 0;
  int thread_exits = 0;
  pid_t thread = -1;
  for (;;) {
    int status = 0;
    const pid_t got = waitpid(-1, &status, __WALL);
    if (got < 0) {
      EXPECT_EQ(errno, ECHILD);
      break;
    }
    if (WIFSTOPPED(status)) {
      // Event stops and the new thread's SIGSTOP are let go silently.
      const int sig = WSTOPSIG(status);
      const int inject = status >> 16 || sig == SIGSTOP ? 0 : sig;
      if (status >> 16 == PTRACE_EVENT_CLONE) {
        unsigned long msg = 0;
        ASSERT_EQ(Ptrace(PTRACE_GETEVENTMSG, got, 0,
                         reinterpret_cast<uintptr_t>(&msg)),
                  0);
        thread = static_cast<pid_t>(msg);
      }
      ASSERT_EQ(Ptrace(PTRACE_CONT, got, 0, inject), 0);
      continue;
    }
    if (got == pid) {
      exits_of_pid++;
      EXPECT_TRUE(WIFEXITED(status)) << std::hex << status;
      EXPECT_EQ(WEXITSTATUS(status), 5);
    } else if (got == thread) {
      thread_exits++;
    }
  }
  EXPECT_EQ(exits_of_pid, 1);
  EXPECT_EQ(thread_exits, 1);
}

TEST(PtraceTest, ExecWithoutOptionSendsSigtrap) {
  const pid_t pid = ForkTraced([] {
    char arg0[] = "true";
    char* argv[] = {arg0, nullptr};
    execv("/bin/true", argv);
    return 99;
  });
  ASSERT_GT(pid, 0);
  ExpectStopped(pid, SIGSTOP);
  ASSERT_EQ(Ptrace(PTRACE_CONT, pid, 0, 0), 0);
  ExpectStopped(pid, SIGTRAP);
  ASSERT_EQ(Ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_TRACEEXIT), 0);
  ASSERT_EQ(Ptrace(PTRACE_CONT, pid, 0, 0), 0);
  const int status = WaitStatus(pid);
  ASSERT_TRUE(WIFSTOPPED(status)) << std::hex << status;
  EXPECT_EQ(status >> 8, SIGTRAP | (PTRACE_EVENT_EXIT << 8));
  unsigned long msg = 1;
  ASSERT_EQ(
      Ptrace(PTRACE_GETEVENTMSG, pid, 0, reinterpret_cast<uintptr_t>(&msg)), 0);
  EXPECT_EQ(msg, 0u);
  ASSERT_EQ(Ptrace(PTRACE_CONT, pid, 0, 0), 0);
  ExpectExit(pid, 0);
}

TEST(PtraceTest, ExecEvent) {
  const pid_t pid = ForkTraced([] {
    char arg0[] = "true";
    char* argv[] = {arg0, nullptr};
    execv("/bin/true", argv);
    return 99;
  });
  ASSERT_GT(pid, 0);
  ExpectStopped(pid, SIGSTOP);
  ASSERT_EQ(Ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_TRACEEXEC), 0);
  ASSERT_EQ(Ptrace(PTRACE_CONT, pid, 0, 0), 0);
  const int status = WaitStatus(pid);
  ASSERT_TRUE(WIFSTOPPED(status)) << std::hex << status;
  EXPECT_EQ(status >> 8, SIGTRAP | (PTRACE_EVENT_EXEC << 8));
  unsigned long msg = 0;
  ASSERT_EQ(
      Ptrace(PTRACE_GETEVENTMSG, pid, 0, reinterpret_cast<uintptr_t>(&msg)), 0);
  EXPECT_EQ(msg, static_cast<unsigned long>(pid));
  siginfo_t info = {};
  ASSERT_EQ(Ptrace(PTRACE_GETSIGINFO, pid, 0, reinterpret_cast<uintptr_t>(&info)),
            0);
  EXPECT_EQ(info.si_signo, SIGTRAP);
  EXPECT_EQ(info.si_code, SIGTRAP | (PTRACE_EVENT_EXEC << 8));
  ASSERT_EQ(Ptrace(PTRACE_CONT, pid, 0, 0), 0);
  ExpectExit(pid, 0);
}

TEST(PtraceTest, SysemuSkipsTheCall) {
  const pid_t pid = ForkTraced([] {
    return syscall(SYS_getppid) == 555 ? 0 : 1;
  });
  ASSERT_GT(pid, 0);
  ExpectStopped(pid, SIGSTOP);
  for (int i = 0; i < 10; i++) {
    ASSERT_EQ(Ptrace(PTRACE_SYSEMU, pid, 0, 0), 0);
    ExpectStopped(pid, SIGTRAP);
    struct user_regs_struct regs;
    ASSERT_EQ(
        Ptrace(PTRACE_GETREGS, pid, 0, reinterpret_cast<uintptr_t>(&regs)), 0);
    // Emulated: raise's rt_sigprocmask "succeeds", getppid returns 555.
    const bool done = regs.orig_rax == SYS_getppid;
    regs.rax = done ? 555 : 0;
    ASSERT_EQ(
        Ptrace(PTRACE_SETREGS, pid, 0, reinterpret_cast<uintptr_t>(&regs)), 0);
    if (done) break;
  }
  ASSERT_EQ(Ptrace(PTRACE_CONT, pid, 0, 0), 0);
  ExpectExit(pid, 0);
}

TEST(PtraceTest, AttachToAStoppedProcessReportsTheStop) {
  const pid_t pid = Fork([] {
    raise(SIGSTOP);
    return 0;
  });
  ASSERT_GT(pid, 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, WUNTRACED), pid);
  ASSERT_TRUE(WIFSTOPPED(status));
  ASSERT_EQ(Ptrace(PTRACE_ATTACH, pid, 0, 0), 0);
  ExpectStopped(pid, SIGSTOP);
  kill(pid, SIGKILL);
  for (;;) {
    status = WaitStatus(pid);
    if (!WIFSTOPPED(status)) break;
  }
  EXPECT_TRUE(WIFSIGNALED(status)) << std::hex << status;
}

TEST(PtraceTest, ArchPrctlReadsTheFsBase) {
  const pid_t pid = ForkTraced([] { return 0; });
  ASSERT_GT(pid, 0);
  ExpectStopped(pid, SIGSTOP);
  struct user_regs_struct regs;
  ASSERT_EQ(Ptrace(PTRACE_GETREGS, pid, 0, reinterpret_cast<uintptr_t>(&regs)),
            0);
  unsigned long fs = 0;
  ASSERT_EQ(Ptrace(PTRACE_ARCH_PRCTL, pid, reinterpret_cast<uintptr_t>(&fs),
                   0x1003 /* ARCH_GET_FS */),
            0);
  EXPECT_EQ(fs, regs.fs_base);
  EXPECT_NE(fs, 0u);
  ASSERT_EQ(Ptrace(PTRACE_CONT, pid, 0, 0), 0);
  ExpectExit(pid, 0);
}

TEST(PtraceTest, SingleStepTraps) {
  const pid_t pid = ForkTraced([] { return 0; });
  ASSERT_GT(pid, 0);
  ExpectStopped(pid, SIGSTOP);
  struct user_regs_struct before, after;
  ASSERT_EQ(
      Ptrace(PTRACE_GETREGS, pid, 0, reinterpret_cast<uintptr_t>(&before)), 0);
  ASSERT_EQ(Ptrace(PTRACE_SINGLESTEP, pid, 0, 0), 0);
  ExpectStopped(pid, SIGTRAP);
  ASSERT_EQ(
      Ptrace(PTRACE_GETREGS, pid, 0, reinterpret_cast<uintptr_t>(&after)), 0);
  EXPECT_NE(before.rip, after.rip);
  EXPECT_EQ(after.eflags & 0x100, 0u);
  ASSERT_EQ(Ptrace(PTRACE_CONT, pid, 0, 0), 0);
  ExpectExit(pid, 0);
}

#ifndef PR_SET_PTRACER
#define PR_SET_PTRACER 0x59616d61
#endif
#ifndef PR_SET_PTRACER_ANY
#define PR_SET_PTRACER_ANY ((unsigned long)-1)
#endif

// Forks a child that allows any tracer (PR_SET_PTRACER, for Yama's
// ptrace_scope 1; EINVAL without Yama) and pauses; returns once it has.
pid_t ForkAttachable(bool allow) {
  int ready[2];
  if (pipe(ready) != 0) return -1;
  const pid_t pid = Fork([ready, allow] {
    close(ready[0]);
    if (allow) prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
    char c = 0;
    if (write(ready[1], &c, 1) != 1) return 1;
    for (;;) pause();
    return 0;
  });
  close(ready[1]);
  char c;
  if (read(ready[0], &c, 1) != 1) return -1;
  close(ready[0]);
  return pid;
}

// Drops every capability of the calling process.
bool DropCapabilities() {
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] = {};
  return syscall(SYS_capset, &header, data) == 0;
}

std::string ReadFirstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

TEST(PtraceTest, YamaRelationalScope) {
  if (ReadFirstLine("/proc/sys/kernel/yama/ptrace_scope") != "1") {
    GTEST_SKIP() << "kernel.yama.ptrace_scope is not 1";
  }
  const pid_t closed = ForkAttachable(false);
  const pid_t open = ForkAttachable(true);
  ASSERT_GT(closed, 0);
  ASSERT_GT(open, 0);
  const pid_t attacker = Fork([closed, open] {
    if (!DropCapabilities()) return 10;
    // Neither an ancestor nor named by PR_SET_PTRACER.
    if (Ptrace(PTRACE_SEIZE, closed, 0, 0) == 0 || errno != EPERM) return 1;
    if (Ptrace(PTRACE_SEIZE, open, 0, 0) != 0) return 2;
    // A descendant.
    const pid_t kid = fork();
    if (kid == 0) {
      for (;;) pause();
    }
    const bool ok = Ptrace(PTRACE_SEIZE, kid, 0, 0) == 0;
    kill(kid, SIGKILL);
    int status;
    waitpid(kid, &status, __WALL);
    return ok ? 0 : 3;
  });
  ASSERT_GT(attacker, 0);
  ExpectExit(attacker, 0);
  for (pid_t pid : {closed, open}) {
    kill(pid, SIGKILL);
    WaitStatus(pid);
  }
}

TEST(PtraceTest, YamaScopeSysctl) {
  const std::string path = "/proc/sys/kernel/yama/ptrace_scope";
  const std::string before = ReadFirstLine(path);
  if (before.empty()) GTEST_SKIP() << "no Yama";
  // Only CAP_SYS_PTRACE may change it, to 0..3.
  const pid_t pid = Fork([path] {
    if (!DropCapabilities()) return 10;
    std::ofstream out(path);
    out << "0\n";
    out.flush();
    return out.fail() ? 0 : 1;
  });
  ExpectExit(pid, 0);
  {
    std::ofstream out(path);
    out << "4\n";
    out.flush();
    EXPECT_TRUE(out.fail());
  }
  EXPECT_EQ(ReadFirstLine(path), before);
}

// A tracer that exits with PTRACE_O_EXITKILL kills its tracee; without it,
// the tracee is detached and runs on.
void TracerExits(bool exitkill) {
  const pid_t target = ForkAttachable(true);
  ASSERT_GT(target, 0);
  const pid_t tracer = Fork([target, exitkill] {
    const long opts = exitkill ? PTRACE_O_EXITKILL : 0;
    if (Ptrace(PTRACE_SEIZE, target, 0, opts) != 0) return 1;
    return 0;
  });
  ASSERT_GT(tracer, 0);
  ExpectExit(tracer, 0);
  if (!exitkill) {
    // Detached: it can be traced again, and signalled as usual.
    ASSERT_EQ(Ptrace(PTRACE_SEIZE, target, 0, 0), 0);
    ASSERT_EQ(Ptrace(PTRACE_DETACH, target, 0, 0), -1);
    EXPECT_EQ(errno, ESRCH);
    kill(target, SIGKILL);
  }
  int status = 0;
  for (;;) {
    status = WaitStatus(target);
    if (!WIFSTOPPED(status)) break;
    Ptrace(PTRACE_CONT, target, 0, 0);
  }
  ASSERT_TRUE(WIFSIGNALED(status)) << std::hex << status;
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
}

TEST(PtraceTest, TracerExitWithExitkillKillsTracee) { TracerExits(true); }

TEST(PtraceTest, TracerExitDetaches) { TracerExits(false); }

}  // namespace
}  // namespace testing
}  // namespace pyvisor
