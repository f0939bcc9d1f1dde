// The seccomp filter of the stub processes.
//
// The master stub installs this filter before it runs stub code, and every
// stub process and thread inherits it. It constrains only the system calls
// that tracers inject (and the few the stub code makes itself): application
// system calls never reach seccomp, because a tracee resumed with
// PTRACE_SYSEMU reports each system call entry to its tracer and the kernel
// then skips the call outright, seccomp check included (syscall_trace_enter
// returns before __secure_computing when SYSCALL_EMU is set). An injected
// call runs under PTRACE_CONT, so the filter sees it.
//
// Legacy vsyscall calls (a call to 0xffffffffff600000) are emulated by the
// kernel without a syscall entry, so SYSEMU does not stop them; the kernel
// does consult seccomp, with the instruction pointer inside the vsyscall
// page. The filter allows gettimeofday, time and getcpu from there only.

#ifndef PKG_PLATFORM_PTRACE_SECCOMP_H_
#define PKG_PLATFORM_PTRACE_SECCOMP_H_

#include <linux/filter.h>
#include <stdint.h>

#include <vector>

namespace pyvisor::ptrace_platform {

// kCloneProcessFlags are the clone flags injected to make an address space:
// a new process that shares the sentry's descriptor table (so that the
// MemoryFile descriptor number is valid in it) and sends SIGCHLD to the
// master stub when it exits.
inline constexpr uint64_t kCloneProcessFlags = 0x400 | 17;  // FILES|SIGCHLD

// kCloneThreadFlags are the clone flags injected to make a stub thread in an
// address space: CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|
// CLONE_SYSVSEM.
inline constexpr uint64_t kCloneThreadFlags = 0x50f00;

// BuildStubFilter returns the classic BPF program of the stub filter. Its
// default action is SECCOMP_RET_KILL_PROCESS.
std::vector<sock_filter> BuildStubFilter();

}  // namespace pyvisor::ptrace_platform

#endif  // PKG_PLATFORM_PTRACE_SECCOMP_H_
