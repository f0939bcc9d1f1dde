// Signal helpers: scoped handlers and masks, and catching a memory fault
// without a child process.

#ifndef TEST_UTIL_SIGNAL_UTIL_H_
#define TEST_UTIL_SIGNAL_UTIL_H_

#include <signal.h>

#include <functional>
#include <optional>

namespace pyvisor {
namespace testing {

// ScopedSigaction installs a signal action and restores the previous one on
// destruction. The test fails (non-fatally) if either sigaction call fails.
class ScopedSigaction {
 public:
  ScopedSigaction(int signo, const struct sigaction& act);
  ~ScopedSigaction();
  ScopedSigaction(const ScopedSigaction&) = delete;
  ScopedSigaction& operator=(const ScopedSigaction&) = delete;

 private:
  int signo_;
  struct sigaction old_;
};

// ScopedSignalMask changes the thread's signal mask with how (SIG_BLOCK,
// SIG_UNBLOCK, SIG_SETMASK) and restores the previous mask on destruction.
class ScopedSignalMask {
 public:
  ScopedSignalMask(int how, const sigset_t& set);
  ~ScopedSignalMask();
  ScopedSignalMask(const ScopedSignalMask&) = delete;
  ScopedSignalMask& operator=(const ScopedSignalMask&) = delete;

 private:
  sigset_t old_;
};

// SignalSet returns a sigset_t holding exactly the given signals.
sigset_t SignalSet(std::initializer_list<int> signals);

// Fault describes a synchronous SIGSEGV or SIGBUS that CatchFault caught.
struct Fault {
  int signo;   // SIGSEGV or SIGBUS.
  int code;    // si_code: SEGV_MAPERR, SEGV_ACCERR, BUS_ADRERR...
  void* addr;  // si_addr: the faulting address.
};

// CatchFault runs fn with handlers for SIGSEGV and SIGBUS installed. If fn
// faults, CatchFault abandons fn where it faulted (by siglongjmp: fn must
// own nothing that needs destruction) and returns the fault; otherwise it
// returns nullopt. The previous handlers and mask are restored either way.
std::optional<Fault> CatchFault(const std::function<void()>& fn);

// ReadFaults reads the byte at p under CatchFault.
std::optional<Fault> ReadFaults(const void* p);

// WriteFaults writes a zero byte at p under CatchFault.
std::optional<Fault> WriteFaults(void* p);

}  // namespace testing
}  // namespace pyvisor

#endif  // TEST_UTIL_SIGNAL_UTIL_H_
