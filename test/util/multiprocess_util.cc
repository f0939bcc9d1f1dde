#include "test/util/multiprocess_util.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <memory>

#include "gtest/gtest.h"

extern char** environ;

namespace pyvisor {
namespace testing {

namespace {

constexpr size_t kStackSize = 256 * 1024;

struct VforkArgs {
  const std::function<int()>* fn;
};

int VforkTrampoline(void* arg) {
  auto* args = static_cast<VforkArgs*>(arg);
  const int ret = (*args->fn)();
  syscall(SYS_exit, ret);
  return ret;
}

}  // namespace

std::string HelperPath() {
  std::string self = program_invocation_name;
  const size_t slash = self.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : self.substr(0, slash);
  return dir + "/proc_helper";
}

pid_t VforkRun(const std::function<int()>& fn, int flags) {
  std::unique_ptr<char[]> stack(new char[kStackSize]);
  VforkArgs args{&fn};
  // The stack grows down: pass its top, 16-byte aligned.
  void* top = stack.get() + kStackSize;
  return clone(VforkTrampoline, top, CLONE_VM | CLONE_VFORK | flags, &args);
}

pid_t SpawnHelper(const HelperSpec& spec, int* exec_errno) {
  const std::string path = spec.path.empty() ? HelperPath() : spec.path;
  std::vector<std::string> argv_s = spec.argv;
  if (argv_s.empty()) argv_s.push_back(path);
  std::string check = "PV_CHECK=";
  for (const auto& c : spec.checks) check += c + "\n";
  const std::string action =
      "PV_ACTION=" + (spec.action.empty() ? std::string("exit=0") : spec.action);
  std::vector<std::string> env_s = {check, action};
  for (const auto& e : spec.env) env_s.push_back(e);

  // Everything the child needs is built before it runs.
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);
  int err = 0;
  const std::function<int()> child = [&]() -> int {
    if (spec.pre_exec) spec.pre_exec();
    syscall(SYS_execve, path.c_str(), argv.data(), envp.data());
    err = errno;
    return 127;
  };
  const pid_t pid = VforkRun(child, spec.exit_signal);
  if (exec_errno != nullptr) *exec_errno = err;
  return pid;
}

int WaitForStatus(pid_t pid) {
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid, &status, __WALL);
  } while (r < 0 && errno == EINTR);
  return r == pid ? status : -1;
}

int InForkedChild(const std::function<void()>& fn) {
  const pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    fn();
    _exit(::testing::Test::HasFailure() ? 1 : 0);
  }
  return WaitForStatus(pid);
}

}  // namespace testing
}  // namespace pyvisor
