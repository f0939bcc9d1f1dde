// Helpers for tests that create processes: running the proc_helper program
// (test/syscalls/linux/proc_helper.cc) and running a function in a vfork
// child.
//
// The sandbox can create processes that share the parent's memory (vfork,
// CLONE_VM) before it can copy an address space (fork), so these helpers
// use clone(CLONE_VM | CLONE_VFORK) rather than fork.

#ifndef TEST_UTIL_MULTIPROCESS_UTIL_H_
#define TEST_UTIL_MULTIPROCESS_UTIL_H_

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

namespace pyvisor {
namespace testing {

// HelperPath returns the path of the proc_helper program, which lives beside
// the test binary (a data dependency of the test).
std::string HelperPath();

// HelperSpec describes one run of proc_helper; see proc_helper.cc for the
// checks and actions it understands.
struct HelperSpec {
  // Assertions the helper checks first (PV_CHECK).
  std::vector<std::string> checks;
  // What it does then (PV_ACTION); "exit=0" if empty.
  std::string action;
  // The file to execute; HelperPath() if empty.
  std::string path;
  // argv; {path} if empty.
  std::vector<std::string> argv;
  // More environment entries ("NAME=value").
  std::vector<std::string> env;
  // Runs in the child before execve. It shares the parent's memory and
  // thread-local storage while the parent waits: it may make system calls
  // through syscall(2) and touch memory, and must not allocate or use libc
  // state.
  std::function<void()> pre_exec;
  // Exit signal of the child (clone's low byte).
  int exit_signal = 17;  // SIGCHLD
};

// SpawnHelper starts a process running spec and returns its pid, or -1 with
// errno set if clone failed. If execve fails, the child exits with 127 and
// the errno of the failure is stored in *exec_errno if given.
pid_t SpawnHelper(const HelperSpec& spec, int* exec_errno = nullptr);

// VforkRun runs fn in a child created with clone(CLONE_VM | CLONE_VFORK |
// flags) on its own stack; the child exits with fn's return value. The same
// rules as HelperSpec::pre_exec apply to fn. Returns the child's pid, or -1
// with errno set.
pid_t VforkRun(const std::function<int()>& fn, int flags = 17 /* SIGCHLD */);

// InForkedChild runs fn in a child made by fork(2), so that what fn
// changes in its process (scheduling and memory policies, I/O priorities,
// signal dispositions) stays there, waits for it and returns its wait
// status: an exit with 0 unless fn recorded a googletest failure. Returns
// -1 if fork or waitpid failed.
int InForkedChild(const std::function<void()>& fn);

// WaitForStatus waits for pid (with __WALL) and returns its wait status, or
// -1 if waitpid failed.
int WaitForStatus(pid_t pid);

}  // namespace testing
}  // namespace pyvisor

#endif  // TEST_UTIL_MULTIPROCESS_UTIL_H_
