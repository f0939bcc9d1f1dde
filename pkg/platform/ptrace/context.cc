// Running application code: the stub thread is resumed with PTRACE_SYSEMU,
// which stops it at the entry of its next system call and makes the kernel
// skip that call, and reports every signal the thread receives as a
// signal-delivery stop first. Resuming with signal 0 discards the signal, so
// the host never delivers a signal to application code: the sentry decides.
//
// Who sent a signal is told by its siginfo: si_code > 0 means the kernel
// generated it (a fault, a trap, an invalid instruction), si_code <= 0 that
// a process sent it with kill, tgkill or sigqueue, si_pid saying which. Only
// the sentry's own tgkill of kInterruptSignal is an interrupt; signals from
// any other process are dropped.
//
// Interrupts: Interrupt stores the pending flag, then reads which stub thread
// is running; Switch publishes the running thread, then takes the flag. With
// sequentially consistent atomics at least one side sees the other, so an
// Interrupt either finds the flag taken before the thread runs or sends the
// running thread a signal that stops it.

#include "pkg/platform/ptrace/context.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <unistd.h>

#include <memory>
#include <mutex>
#include <utility>

#include "pkg/platform/ptrace/address_space.h"
#include "pkg/platform/ptrace/error.h"
#include "pkg/platform/ptrace/platform.h"
#include "pkg/platform/ptrace/tracee.h"

namespace pyvisor::ptrace_platform {
namespace {

// Classify returns the event kind of a signal-delivery stop, or -1 for a
// signal that is none of the sentry's business (it is then suppressed).
int Classify(int sig, const siginfo_t& info, pid_t sentry_pid) {
  if (sig == kInterruptSignal && info.si_code == SI_TKILL &&
      info.si_pid == sentry_pid) {
    return kEventInterrupt;
  }
  // si_code <= 0: sent by some process with kill, tgkill or sigqueue.
  if (info.si_code <= 0) return -1;
  switch (sig) {
    case SIGSEGV:
      if (info.si_code == SEGV_MAPERR || info.si_code == SEGV_ACCERR) {
        return kEventFault;
      }
      return kEventSignal;
    case SIGBUS:
    case SIGFPE:
    case SIGILL:
    case SIGSYS:
    case SIGTRAP:
      return kEventSignal;
    default:
      return -1;
  }
}

// ClearOnExit resets the running marker of a Context however a run ends.
class ClearOnExit {
 public:
  explicit ClearOnExit(std::atomic<uint64_t>* running) : running_(running) {}
  ~ClearOnExit() { running_->store(0); }
  ClearOnExit(const ClearOnExit&) = delete;
  ClearOnExit& operator=(const ClearOnExit&) = delete;

 private:
  std::atomic<uint64_t>* running_;
};

}  // namespace

Context::Context(std::shared_ptr<Platform> platform)
    : platform_(std::move(platform)) {}

Context::~Context() {
  std::shared_ptr<AddressSpace> dropped;
  std::lock_guard<std::mutex> lock(mu_);
  if (tid_ == 0) return;
  if (tracer_ == gettid()) {
    try {
      InjectExit(tid_, platform_->config());
    } catch (const PtraceError&) {
    }
  }
  // On another thread the stub thread cannot be made to exit; its tracer's
  // exit will kill its stub process (see context.h).
  dropped = ForgetLocked();
}

int Context::Switch(AddressSpace& as, uint8_t* state, size_t size, int flags) {
  CheckSize(size);
  if (as.platform_ != platform_) {
    ThrowError(EINVAL, "address space of another platform");
  }
  pid_t self = gettid();
  std::shared_ptr<AddressSpace> dropped;
  std::lock_guard<std::mutex> lock(mu_);
  CheckTracerLocked(self);

  // After execve the task runs in another address space: its old stub
  // thread exits (the thread only; its process lives on for other tasks).
  if (tid_ != 0 && as_.get() != &as) {
    InjectExit(tid_, platform_->config());
    dropped = ForgetLocked();
  }
  if (tid_ == 0 && !AttachLocked(as, self)) return kEventDied;
  if (platform_->options().pin_stub_threads) PinLocked();

  // Application code always runs in 64-bit user mode: the code and stack
  // selectors come from the stub's own, whatever the state says. orig_rax
  // is -1 so that the host never applies its system call restart logic
  // (rewind rip, reload rax) to application registers when it resumes the
  // thread with a signal pending: restarts are the sentry's business, and
  // rax may hold anything, an ERESTART errno included.
  user_regs_struct regs;
  memcpy(&regs, state, sizeof(regs));
  regs.cs = platform_->config().regs.cs;
  regs.ss = platform_->config().regs.ss;
  regs.orig_rax = ~0ull;
  bool ok = SetRegsLocked(regs);
  if (ok && (flags & kSwitchSetFpstate) != 0) {
    struct iovec iov = {state + kFpstateOffset, platform_->fpstate_size()};
    ok = ptrace(PTRACE_SETREGSET, tid_, platform_->fp_regset(), &iov) == 0;
  }
  if (!ok) {
    if (errno != ESRCH) ThrowErrno("set stub thread registers");
    ReapDead(tid_);
    dropped = ForgetLocked();
    return kEventDied;
  }
  return RunLocked(state, &dropped);
}

int Context::RunLocked(uint8_t* state, std::shared_ptr<AddressSpace>* dropped) {
  const uint64_t running =
      (static_cast<uint64_t>(tgid_) << 32) | static_cast<uint32_t>(tid_);
  const pid_t sentry_pid = platform_->config().sentry_pid;
  ClearOnExit clear(&running_);
  for (bool ran = false;; ran = true) {
    // Publish the running thread before looking at the pending flag, and
    // Interrupt sets the flag before looking at the running thread: one of
    // the two sees the other (both are sequentially consistent).
    running_.store(running);
    if (interrupt_pending_.exchange(false)) {
      if (ran && !GetRegsLocked(state)) {
        *dropped = ForgetLocked();
        return kEventDied;
      }
      return kEventInterrupt;
    }

    int status;
    if (ptrace(PTRACE_SYSEMU, tid_, nullptr, nullptr) == 0) {
      status = WaitTid(tid_);
    } else if (errno == ESRCH) {
      status = WaitTid(tid_);
      if (!IsExit(status)) ThrowError(ESRCH, "PTRACE_SYSEMU");
    } else {
      ThrowErrno("PTRACE_SYSEMU");
    }
    if (IsExit(status)) {
      *dropped = ForgetLocked();
      return kEventDied;
    }

    int sig = WSTOPSIG(status);
    int kind;
    if (sig == (SIGTRAP | 0x80)) {
      kind = kEventSyscall;
    } else if (status >> 16 != 0) {
      // PTRACE_EVENT_STOP: a late PTRACE_INTERRUPT or a group stop.
      continue;
    } else {
      siginfo_t info;
      if (ptrace(PTRACE_GETSIGINFO, tid_, nullptr, &info) != 0) {
        if (errno != ESRCH) ThrowErrno("PTRACE_GETSIGINFO");
        ReapDead(tid_);
        *dropped = ForgetLocked();
        return kEventDied;
      }
      kind = Classify(sig, info, sentry_pid);
      // Other signals are dropped: the next PTRACE_SYSEMU passes signal 0.
      if (kind < 0) continue;
      if (kind == kEventInterrupt) {
        // This return satisfies every Interrupt that set the flag so far.
        interrupt_pending_.store(false);
      }
      memcpy(state + kSiginfoOffset, &info, kSiginfoSize);
    }
    if (!GetRegsLocked(state)) {
      *dropped = ForgetLocked();
      return kEventDied;
    }
    return kind;
  }
}

bool Context::GetRegsLocked(uint8_t* state) {
  if (ptrace(PTRACE_GETREGS, tid_, nullptr, state) == 0) {
    memcpy(&regs_, state, sizeof(regs_));
    regs_known_ = true;
    return true;
  }
  regs_known_ = false;
  if (errno != ESRCH) ThrowErrno("PTRACE_GETREGS");
  ReapDead(tid_);
  return false;
}

// SetRegsLocked loads regs into the stopped stub thread. PTRACE_SETREGS
// costs about a microsecond here (it rewrites every segment and base
// register), a tenth of a whole system call round trip; after a system call
// the sentry has usually changed only rax, the result, so then one
// PTRACE_POKEUSER of rax does (docs/performance.md).
//
// That path leaves orig_rax as the kernel has it (the system call number,
// not -1), so the host's restart logic could act on a signal that arrives
// before the thread is back in user mode, but only if rax holds an ERESTART
// code (-512..-516). The sentry never resumes a thread with one (the run
// loop resolves restarts first); such values take the full path all the
// same.
bool Context::SetRegsLocked(const user_regs_struct& regs) {
  const int64_t rax = static_cast<int64_t>(regs.rax);
  bool poke = regs_known_ && !(rax >= -516 && rax <= -512);
  if (poke) {
    user_regs_struct want = regs;
    want.rax = regs_.rax;
    want.orig_rax = regs_.orig_rax;
    poke = memcmp(&want, &regs_, sizeof(want)) == 0;
  }
  if (poke) {
    if (regs.rax == regs_.rax) return true;
    if (ptrace(PTRACE_POKEUSER, tid_, offsetof(user_regs_struct, rax),
               regs.rax) == 0) {
      regs_.rax = regs.rax;
      return true;
    }
  } else if (ptrace(PTRACE_SETREGS, tid_, nullptr, &regs) == 0) {
    regs_ = regs;
    regs_known_ = true;
    return true;
  }
  regs_known_ = false;
  return false;
}

void Context::Interrupt() {
  interrupt_pending_.store(true);
  uint64_t running = running_.load();
  if (running != 0) {
    syscall(SYS_tgkill, static_cast<pid_t>(running >> 32),
            static_cast<pid_t>(running & 0xffffffff), kInterruptSignal);
  }
}

void Context::PullFpstate(uint8_t* state, size_t size) {
  CheckSize(size);
  pid_t self = gettid();
  std::shared_ptr<AddressSpace> dropped;
  std::lock_guard<std::mutex> lock(mu_);
  CheckTracerLocked(self);
  if (tid_ == 0) ThrowError(ESRCH, "pull fpstate: no stub thread");
  struct iovec iov = {state + kFpstateOffset, platform_->fpstate_size()};
  if (ptrace(PTRACE_GETREGSET, tid_, platform_->fp_regset(), &iov) != 0) {
    if (errno != ESRCH) ThrowErrno("PTRACE_GETREGSET");
    ReapDead(tid_);
    dropped = ForgetLocked();
    ThrowError(ESRCH, "pull fpstate: stub thread died");
  }
}

void Context::Prepare(AddressSpace& as) {
  if (as.platform_ != platform_) {
    ThrowError(EINVAL, "address space of another platform");
  }
  pid_t self = gettid();
  std::shared_ptr<AddressSpace> dropped;
  std::lock_guard<std::mutex> lock(mu_);
  CheckTracerLocked(self);
  if (tid_ != 0 && as_.get() == &as) return;
  if (tid_ != 0) {
    InjectExit(tid_, platform_->config());
    dropped = ForgetLocked();
  }
  if (!AttachLocked(as, self)) ThrowError(ESRCH, "address space stub died");
}

void Context::Release() {
  pid_t self = gettid();
  std::shared_ptr<AddressSpace> dropped;
  std::lock_guard<std::mutex> lock(mu_);
  if (tid_ == 0) return;
  CheckTracerLocked(self);
  InjectExit(tid_, platform_->config());
  dropped = ForgetLocked();
}

pid_t Context::stub_tid() {
  std::lock_guard<std::mutex> lock(mu_);
  return tid_;
}

void Context::CheckSize(size_t size) const {
  if (size < kFpstateOffset + platform_->fpstate_size()) {
    ThrowError(EINVAL, "state buffer too small");
  }
}

void Context::CheckTracerLocked(pid_t self) const {
  if (tid_ != 0 && tracer_ != self) {
    ThrowError(EPERM, "context used off its tracer thread");
  }
}

bool Context::AttachLocked(AddressSpace& as, pid_t self) {
  if (as.released()) return false;
  // The thread made with the address space, if no other Context took it;
  // else a new one.
  pid_t tid = as.parked_thread_.exchange(0);
  if (tid == 0) {
    try {
      tid = platform_->CloneThread(as.control_tid());
    } catch (const PtraceError& e) {
      if (e.err() == ESRCH) return false;
      throw;
    }
  }
  if (!SeizeParked(tid, platform_->config().layout)) return false;
  tid_ = tid;
  tgid_ = as.pid();
  tracer_ = self;
  cpu_ = -1;
  as_ = as.shared_from_this();
  as.Register(self, this);
  return true;
}

void Context::PinLocked() {
  int cpu = sched_getcpu();
  if (cpu < 0 || cpu == cpu_) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  // A failure (a CPU outside the stub's cpuset) is not retried per switch.
  sched_setaffinity(tid_, sizeof(set), &set);
  cpu_ = cpu;
}

std::shared_ptr<AddressSpace> Context::ForgetLocked() {
  if (as_) as_->Unregister(tracer_, this);
  regs_known_ = false;
  tid_ = 0;
  tgid_ = 0;
  tracer_ = 0;
  cpu_ = -1;
  return std::move(as_);
}

bool Context::InjectFromTracer(AddressSpace* as, pid_t self, long nr,
                               const uint64_t (&args)[6], long* ret) {
  std::shared_ptr<AddressSpace> dropped;
  std::lock_guard<std::mutex> lock(mu_);
  if (tid_ == 0 || as_.get() != as || tracer_ != self) return false;
  // The injection leaves the thread's registers at the stub's trap.
  regs_known_ = false;
  if (!Inject(tid_, platform_->config(), nr, args, false, ret,
              &interrupt_pending_)) {
    dropped = ForgetLocked();
    ThrowError(ESRCH, "address space stub died");
  }
  return true;
}

void Context::ReapIfIdle(AddressSpace* as) {
  std::shared_ptr<AddressSpace> dropped;
  std::unique_lock<std::mutex> lock(mu_, std::try_to_lock);
  if (!lock.owns_lock() || tid_ == 0 || as_.get() != as) return;
  // The stub process was sent SIGKILL: the thread exits without help.
  try {
    while (!IsExit(WaitTid(tid_))) {
    }
  } catch (const PtraceError&) {
  }
  dropped = ForgetLocked();
}

}  // namespace pyvisor::ptrace_platform
