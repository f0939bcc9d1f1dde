// The stub code page: the only code a stub process holds of its own.
//
// Every stub process (the master and each address space) runs from one page
// of position-independent code placed at the top of the user address space.
// The page has four parts:
//
//   entry   the master stub jumps here once, after its seccomp filter is in
//           place: it unmaps everything below and above the page, so that the
//           stub keeps no copy of the sentry's memory, and parks. No stack is
//           used from here on, since the stack is unmapped too.
//   syscall the injection site: a tracer points rip here with a system call
//           number in rax and resumes the tracee; the `syscall` is followed by
//           an `int3` whose SIGTRAP tells the tracer that the call is done.
//           The child of an injected clone returns here too, with rax == 0;
//           it is told apart from the tracee by a marker that the tracer puts
//           in r15 for clone injections only, and goes on to set its parent
//           death signal, check that its parent is still the master stub
//           (whose pid the tracer put in r14), and park.
//   park    `pause` in a loop: a parked thread waits here, untraced or
//           traced, until a tracer takes it (PTRACE_SEIZE + PTRACE_INTERRUPT).
//   trap    the int3 that ends an injected system call.

#ifndef PKG_PLATFORM_PTRACE_STUB_H_
#define PKG_PLATFORM_PTRACE_STUB_H_

#include <stddef.h>
#include <stdint.h>

namespace pyvisor::ptrace_platform {

// kPageSize is the host page size on amd64.
inline constexpr uintptr_t kPageSize = 4096;

// kTaskSize is one past the highest user address of a 4-level paging amd64
// process (TASK_SIZE_MAX in Linux).
inline constexpr uintptr_t kTaskSize = 0x7ffffffff000;

// StubLayout gives the addresses of the parts of a placed stub page.
struct StubLayout {
  uintptr_t page = 0;        // first byte of the stub page
  uintptr_t entry = 0;       // where the master stub starts
  uintptr_t syscall = 0;     // the injection site: a `syscall` instruction
  uintptr_t trap_rip = 0;    // rip after the int3 that ends an injection
  uintptr_t park_begin = 0;  // [park_begin, park_end) holds a parked rip
  uintptr_t park_end = 0;
  uint64_t clone_marker = 0;  // r15 value that marks a clone injection
};

// StubPage owns the stub code page mapped in the calling (sentry) process.
// Stub processes cloned from the sentry inherit it at the same address.
class StubPage {
 public:
  // Maps the stub code R+X as high as possible below kTaskSize: it tries the
  // last page with MAP_FIXED_NOREPLACE and walks down a page at a time.
  // Throws PtraceError.
  StubPage();
  ~StubPage();

  StubPage(const StubPage&) = delete;
  StubPage& operator=(const StubPage&) = delete;

  // layout returns the addresses of the stub's parts.
  const StubLayout& layout() const { return layout_; }

 private:
  StubLayout layout_;
};

}  // namespace pyvisor::ptrace_platform

#endif  // PKG_PLATFORM_PTRACE_STUB_H_
