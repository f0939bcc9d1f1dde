// A context of the ptrace platform: runs one task's application code.

#ifndef PKG_PLATFORM_PTRACE_CONTEXT_H_
#define PKG_PLATFORM_PTRACE_CONTEXT_H_

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#include <atomic>
#include <memory>
#include <mutex>

namespace pyvisor::ptrace_platform {

class AddressSpace;
class Platform;

// Context runs application code for one host thread (the task's thread) in
// a stub thread that this host thread traces. It has at most one stub thread
// at a time, in the address space it last switched to.
//
// Switch, PullFpstate and Release must be called from the thread that
// created the current stub thread (EPERM otherwise); Interrupt may be called
// from any thread. Before its host thread ends, a Context that has a stub
// thread must be released: with PTRACE_O_EXITKILL the exit of the tracer
// thread would SIGKILL the stub thread and with it its whole stub process.
class Context : public std::enable_shared_from_this<Context> {
 public:
  // Releases the stub thread when called on its tracer thread; on another
  // thread it only forgets it.
  ~Context();

  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // Switch runs application code in as, from the registers in state (the
  // state buffer layout of pkg/platform/platform.py, size bytes long), until
  // a system call, a fault, a signal or an interrupt, and returns the event
  // kind (kEvent*). The registers, and for faults and signals the siginfo,
  // are written back to state. With kSwitchSetFpstate in flags the XSAVE
  // area is loaded from state first. Blocks; throws PtraceError.
  int Switch(AddressSpace& as, uint8_t* state, size_t size, int flags);

  // Interrupt makes a running Switch, or the next one, return
  // kEventInterrupt soon. Spurious interrupts are possible; lost ones are
  // not. Never blocks.
  void Interrupt();

  // PullFpstate reads the stub thread's XSAVE area into state. Throws
  // PtraceError (ESRCH if there is no live stub thread).
  void PullFpstate(uint8_t* state, size_t size);

  // Prepare gives the Context its stub thread in as now rather than at the
  // next Switch: the current one (elsewhere) exits, and system calls of the
  // calling thread into as (AddressSpace::MapFile...) are then injected
  // through the new one directly, without the platform thread. For execve,
  // which fills a new address space and then runs in it. The current stub
  // thread's FPU state is lost: read it first (PullFpstate) if it matters.
  // Throws PtraceError (ESRCH if the address space's stub died).
  void Prepare(AddressSpace& as);

  // Release makes the stub thread exit and reaps it. Throws PtraceError.
  void Release();

  // stub_tid is the thread id of the current stub thread, or 0.
  pid_t stub_tid();

 private:
  friend class AddressSpace;
  friend class Platform;

  explicit Context(std::shared_ptr<Platform> platform);

  void CheckSize(size_t size) const;
  void CheckTracerLocked(pid_t self) const;
  bool AttachLocked(AddressSpace& as, pid_t self);
  void PinLocked();
  int RunLocked(uint8_t* state, std::shared_ptr<AddressSpace>* dropped);
  bool GetRegsLocked(uint8_t* state);
  bool SetRegsLocked(const user_regs_struct& regs);
  std::shared_ptr<AddressSpace> ForgetLocked();
  bool InjectFromTracer(AddressSpace* as, pid_t self, long nr,
                        const uint64_t (&args)[6], long* ret);
  void ReapIfIdle(AddressSpace* as);

  const std::shared_ptr<Platform> platform_;

  std::mutex mu_;
  // Guarded by mu_.
  std::shared_ptr<AddressSpace> as_;  // address space of the stub thread
  pid_t tid_ = 0;                     // stub thread, 0 if none
  pid_t tgid_ = 0;                    // its stub process
  pid_t tracer_ = 0;                  // host thread that traces it
  int cpu_ = -1;                      // CPU it is pinned to

  // The stub thread's registers as the kernel holds them, when known
  // (regs_known_): what the last GETREGS read or SETREGS wrote. Lets Switch
  // write only rax when that is all the sentry changed (see SetRegsLocked).
  user_regs_struct regs_ = {};
  bool regs_known_ = false;

  // (tgid << 32 | tid) of the stub thread while it runs application code,
  // else 0.
  std::atomic<uint64_t> running_{0};
  std::atomic<bool> interrupt_pending_{false};
};

}  // namespace pyvisor::ptrace_platform

#endif  // PKG_PLATFORM_PTRACE_CONTEXT_H_
