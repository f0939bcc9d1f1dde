#include "pkg/platform/ptrace/tracee.h"

#include <errno.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "pkg/platform/ptrace/error.h"

namespace pyvisor::ptrace_platform {
namespace {

constexpr long kSeizeOptions = PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL;

// Restart errnos that a signal can leave in rax (ERESTARTSYS,
// ERESTARTNOINTR, ERESTARTNOHAND); the call is made again.
bool IsRestart(long ret) { return ret >= -514 && ret <= -512; }

// Result of a ptrace request on a tracee that may have died.
enum class Req { kOk, kDied };

// Do issues a ptrace request; if the tracee is gone it reaps it and reports
// kDied. Throws PtraceError on any other failure.
Req Do(enum __ptrace_request req, pid_t tid, void* addr, void* data,
       const char* op) {
  if (ptrace(req, tid, addr, data) == 0) return Req::kOk;
  if (errno != ESRCH) ThrowErrno(op);
  ReapDead(tid);
  return Req::kDied;
}

user_regs_struct InjectionRegs(const StubConfig& config) {
  user_regs_struct regs = config.regs;
  regs.rip = config.layout.syscall;
  regs.orig_rax = ~0ull;  // not in a system call: no restart fix-up
  regs.r14 = static_cast<uint64_t>(config.master_pid);
  regs.r15 = 0;
  return regs;
}

void Pause(int attempt) {
  long ns = std::min(10000L << std::min(attempt, 7), 1000000L);
  struct timespec ts = {0, ns};
  nanosleep(&ts, nullptr);
}

}  // namespace

int WaitTid(pid_t tid) {
  int status;
  for (;;) {
    pid_t got = waitpid(tid, &status, __WALL);
    if (got == tid) return status;
    if (got < 0 && errno != EINTR) ThrowErrno("waitpid stub thread");
  }
}

void ReapDead(pid_t tid) {
  int status = WaitTid(tid);
  if (!IsExit(status)) ThrowError(ESRCH, "stub thread in an unexpected stop");
}

bool SeizeParked(pid_t tid, const StubLayout& layout) {
  if (ptrace(PTRACE_SEIZE, tid, nullptr, kSeizeOptions) != 0) {
    ThrowErrno("PTRACE_SEIZE");
  }
  for (int attempt = 0;; ++attempt) {
    if (Do(PTRACE_INTERRUPT, tid, nullptr, nullptr, "PTRACE_INTERRUPT") ==
        Req::kDied) {
      return false;
    }
    int status = WaitTid(tid);
    if (IsExit(status)) return false;
    user_regs_struct regs;
    if (Do(PTRACE_GETREGS, tid, nullptr, &regs, "PTRACE_GETREGS") ==
        Req::kDied) {
      return false;
    }
    if (regs.rip >= layout.park_begin && regs.rip < layout.park_end) {
      return true;
    }
    // Still on its way to the park loop (a signal stop, if that is what this
    // was, is suppressed).
    if (Do(PTRACE_CONT, tid, nullptr, nullptr, "PTRACE_CONT") == Req::kDied) {
      return false;
    }
    Pause(attempt);
  }
}

bool Inject(pid_t tid, const StubConfig& config, long nr,
            const uint64_t (&args)[6], bool is_clone, long* ret,
            std::atomic<bool>* interrupted) {
  user_regs_struct regs = InjectionRegs(config);
  regs.rax = static_cast<uint64_t>(nr);
  regs.rdi = args[0];
  regs.rsi = args[1];
  regs.rdx = args[2];
  regs.r10 = args[3];
  regs.r8 = args[4];
  regs.r9 = args[5];
  if (is_clone) regs.r15 = config.layout.clone_marker;

  for (;;) {
    if (Do(PTRACE_SETREGS, tid, nullptr, &regs, "PTRACE_SETREGS") ==
            Req::kDied ||
        Do(PTRACE_CONT, tid, nullptr, nullptr, "PTRACE_CONT") == Req::kDied) {
      return false;
    }
    for (;;) {
      int status = WaitTid(tid);
      if (IsExit(status)) return false;
      int sig = WSTOPSIG(status);
      if (status >> 16 == 0 && sig == SIGTRAP) {
        user_regs_struct out;
        if (Do(PTRACE_GETREGS, tid, nullptr, &out, "PTRACE_GETREGS") ==
            Req::kDied) {
          return false;
        }
        if (out.rip == config.layout.trap_rip) {
          *ret = static_cast<long>(out.rax);
          break;
        }
      } else if (status >> 16 == 0 && sig == kInterruptSignal &&
                 interrupted != nullptr) {
        interrupted->store(true);
      }
      // Anything else (an interrupt, a group stop, a signal) is suppressed.
      if (Do(PTRACE_CONT, tid, nullptr, nullptr, "PTRACE_CONT") == Req::kDied) {
        return false;
      }
    }
    if (!IsRestart(*ret)) return true;
  }
}

void InjectExit(pid_t tid, const StubConfig& config) {
  user_regs_struct regs = InjectionRegs(config);
  regs.rax = SYS_exit;
  regs.rdi = 0;
  if (Do(PTRACE_SETREGS, tid, nullptr, &regs, "PTRACE_SETREGS") == Req::kDied ||
      Do(PTRACE_CONT, tid, nullptr, nullptr, "PTRACE_CONT") == Req::kDied) {
    return;
  }
  for (;;) {
    int status = WaitTid(tid);
    if (IsExit(status)) return;
    if (Do(PTRACE_CONT, tid, nullptr, nullptr, "PTRACE_CONT") == Req::kDied) {
      return;
    }
  }
}

bool ParkAndDetach(pid_t tid, const StubConfig& config) {
  user_regs_struct regs = InjectionRegs(config);
  regs.rip = config.layout.park_begin;
  return Do(PTRACE_SETREGS, tid, nullptr, &regs, "PTRACE_SETREGS") ==
             Req::kOk &&
         Do(PTRACE_DETACH, tid, nullptr, nullptr, "PTRACE_DETACH") == Req::kOk;
}

}  // namespace pyvisor::ptrace_platform
