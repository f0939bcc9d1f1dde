#include "test/util/signal_util.h"

#include <setjmp.h>
#include <signal.h>

#include <functional>
#include <optional>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/syscall_matchers.h"

namespace pyvisor {
namespace testing {

ScopedSigaction::ScopedSigaction(int signo, const struct sigaction& act)
    : signo_(signo) {
  EXPECT_THAT(sigaction(signo, &act, &old_), SyscallSucceeds());
}

ScopedSigaction::~ScopedSigaction() {
  EXPECT_THAT(sigaction(signo_, &old_, nullptr), SyscallSucceeds());
}

ScopedSignalMask::ScopedSignalMask(int how, const sigset_t& set) {
  // pthread_sigmask returns the error number instead of setting errno.
  EXPECT_EQ(pthread_sigmask(how, &set, &old_), 0);
}

ScopedSignalMask::~ScopedSignalMask() {
  EXPECT_EQ(pthread_sigmask(SIG_SETMASK, &old_, nullptr), 0);
}

sigset_t SignalSet(std::initializer_list<int> signals) {
  sigset_t set;
  sigemptyset(&set);
  for (int s : signals) sigaddset(&set, s);
  return set;
}

namespace {

// Where a caught fault returns to, and what it was. One CatchFault at a time
// per thread.
thread_local sigjmp_buf fault_return;
thread_local Fault last_fault;

// async-signal-safe: records into thread-local storage and jumps back to
// CatchFault, which is still on this thread's stack.
void FaultHandler(int signo, siginfo_t* info, void*) {
  last_fault = Fault{signo, info->si_code, info->si_addr};
  siglongjmp(fault_return, 1);
}

}  // namespace

std::optional<Fault> CatchFault(const std::function<void()>& fn) {
  struct sigaction act = {};
  act.sa_sigaction = FaultHandler;
  act.sa_flags = SA_SIGINFO;
  sigemptyset(&act.sa_mask);
  ScopedSigaction segv(SIGSEGV, act);
  ScopedSigaction bus(SIGBUS, act);

  // The mask is saved (second argument 1) so that siglongjmp unblocks the
  // signal that the handler was running for.
  if (sigsetjmp(fault_return, 1) != 0) {
    return last_fault;
  }
  fn();
  return std::nullopt;
}

std::optional<Fault> ReadFaults(const void* p) {
  return CatchFault([p] {
    // The volatile access cannot be optimised away.
    (void)*static_cast<const volatile char*>(p);
  });
}

std::optional<Fault> WriteFaults(void* p) {
  return CatchFault([p] { *static_cast<volatile char*>(p) = 0; });
}

}  // namespace testing
}  // namespace pyvisor
