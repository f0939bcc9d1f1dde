// Low-level operations on one stub thread, as its tracer.
//
// ptrace obeys only the tracer *thread*: every request below must come from
// the thread that seized tid. waitpid is more lenient (any thread of the
// tracer's thread group may wait for a tracee), but each stub thread is
// waited for only by the code that owns it, so that no thread consumes a stop
// meant for another and no thread id is reaped twice.
//
// Threads are taken with PTRACE_SEIZE + PTRACE_INTERRUPT rather than by
// sending SIGSTOP: a SIGSTOP to one thread starts a group stop that stops
// every thread of the stub process, including threads that other tracers are
// running. PTRACE_INTERRUPT stops only the one thread, and only for its
// tracer.
//
// Every tracee is seized with PTRACE_O_EXITKILL, so it gets SIGKILL when its
// tracer thread exits. SIGKILL kills the whole stub process, so a tracer that
// means to end while its stub thread's process lives on must first make the
// stub thread exit (InjectExit).
//
// Injection: a system call is run in a stopped tracee by pointing rip at the
// stub's `syscall` instruction with the call in rax and the arguments in rdi,
// rsi, rdx, r10, r8, r9, and resuming it with PTRACE_CONT; the int3 after the
// instruction stops it again. This works from any stop, a PTRACE_SYSEMU
// system call entry included: the kernel decided to skip that application
// call before the stop, and does so whatever the tracer does next. orig_rax
// is set to -1 so that the kernel's system call restart (which rewinds rip
// by two and reloads rax when a stop interrupted a call such as the park
// loop's pause) never fires on the rewritten registers.
//
// Unless said otherwise, a function that observes the exit of tid has reaped
// it: the caller must forget the thread id.

#ifndef PKG_PLATFORM_PTRACE_TRACEE_H_
#define PKG_PLATFORM_PTRACE_TRACEE_H_

#include <signal.h>
#include <sys/types.h>
#include <sys/user.h>
#include <sys/wait.h>

#include <atomic>
#include <cstdint>

#include "pkg/platform/ptrace/stub.h"

namespace pyvisor::ptrace_platform {

// kInterruptSignal is the signal Context::Interrupt sends to a running stub
// thread. SIGCHLD is harmless to a stub that is not traced any more (its
// disposition in stubs is SIG_IGN), and a traced thread reports it to the
// tracer even though it is ignored (sig_ignored() never ignores signals of
// traced threads).
inline constexpr int kInterruptSignal = SIGCHLD;

// StubConfig is what injecting into any stub thread needs. It is fixed once
// the master stub has started.
struct StubConfig {
  StubLayout layout;
  // A register template for injections, taken from the parked master stub:
  // valid segment selectors and flags.
  user_regs_struct regs = {};
  pid_t master_pid = 0;
  pid_t sentry_pid = 0;
};

// WaitTid waits for a stop or the exit of tid (waitpid with __WALL), retrying
// on EINTR, and returns the status. Throws PtraceError.
int WaitTid(pid_t tid);

// IsExit reports whether a wait status says that the thread is gone.
inline bool IsExit(int status) {
  return WIFEXITED(status) || WIFSIGNALED(status);
}

// ReapDead waits for tid to exit after a ptrace request on it failed with
// ESRCH (the tracee is no longer stopped because SIGKILL woke it). Throws
// PtraceError(ESRCH) if tid is found stopped instead.
void ReapDead(pid_t tid);

// SeizeParked makes the calling thread the tracer of tid, a parked stub
// thread, and waits until tid is stopped in the park loop (a thread that was
// just cloned may still be on its way there). Returns false if tid died.
// Throws PtraceError.
bool SeizeParked(pid_t tid, const StubLayout& layout);

// Inject runs system call nr with args in the stopped tracee tid and stores
// its return value (a negative errno on failure) in *ret. For a clone,
// is_clone marks the call so that the child parks. A kInterruptSignal stop
// met on the way is suppressed and, if interrupted is set, recorded there.
// Returns false if tid died. Throws PtraceError.
bool Inject(pid_t tid, const StubConfig& config, long nr,
            const uint64_t (&args)[6], bool is_clone, long* ret,
            std::atomic<bool>* interrupted);

// InjectExit makes the stopped tracee tid exit (the thread only, SYS_exit)
// and reaps it. Throws PtraceError.
void InjectExit(pid_t tid, const StubConfig& config);

// Park points the stopped tracee tid at the park loop and detaches from it.
// Returns false if tid died. Throws PtraceError.
bool ParkAndDetach(pid_t tid, const StubConfig& config);

}  // namespace pyvisor::ptrace_platform

#endif  // PKG_PLATFORM_PTRACE_TRACEE_H_
