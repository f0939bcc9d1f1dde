#include "pkg/platform/ptrace/address_space.h"

#include <errno.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "pkg/platform/ptrace/context.h"
#include "pkg/platform/ptrace/error.h"
#include "pkg/platform/ptrace/platform.h"
#include "pkg/platform/ptrace/stub.h"

namespace pyvisor::ptrace_platform {

AddressSpace::AddressSpace(std::shared_ptr<Platform> platform, pid_t tgid,
                           pid_t control)
    : platform_(std::move(platform)), tgid_(tgid), control_(control) {}

AddressSpace::~AddressSpace() {
  try {
    Release();
  } catch (const PtraceError&) {
  }
}

void AddressSpace::MapFile(uintptr_t addr, uint64_t length, uint64_t offset,
                           int prot, bool precommit) {
  CheckRange(addr, length);
  if (offset % kPageSize != 0) ThrowError(EINVAL, "mmap offset");
  uint64_t flags = MAP_SHARED | MAP_FIXED | (precommit ? MAP_POPULATE : 0);
  const uint64_t args[6] = {addr,
                            length,
                            static_cast<uint64_t>(prot),
                            flags,
                            static_cast<uint64_t>(platform_->memfile_fd()),
                            offset};
  long ret = Syscall(SYS_mmap, args);
  if (ret < 0) ThrowError(static_cast<int>(-ret), "mmap in stub");
  if (static_cast<uintptr_t>(ret) != addr) {
    ThrowError(EFAULT, "mmap in stub: wrong address");
  }
}

void AddressSpace::Unmap(uintptr_t addr, uint64_t length) {
  CheckRange(addr, length);
  const uint64_t args[6] = {addr, length};
  long ret = Syscall(SYS_munmap, args);
  if (ret < 0) ThrowError(static_cast<int>(-ret), "munmap in stub");
}

void AddressSpace::Protect(uintptr_t addr, uint64_t length, int prot) {
  CheckRange(addr, length);
  const uint64_t args[6] = {addr, length, static_cast<uint64_t>(prot)};
  long ret = Syscall(SYS_mprotect, args);
  if (ret < 0) ThrowError(static_cast<int>(-ret), "mprotect in stub");
}

void AddressSpace::Release() {
  if (released_.exchange(true)) return;
  // A forked child of the sentry must not kill its parent's stubs.
  if (getpid() != platform_->config().sentry_pid) return;
  kill(tgid_, SIGKILL);
  ReapIdleThreads();
  try {
    platform_->ReleaseControl(control_);
  } catch (const PtraceError& e) {
    // A closed platform has reaped everything already.
    if (e.err() != EBADF) throw;
  }
}

void AddressSpace::CheckRange(uintptr_t addr, uint64_t length) const {
  uintptr_t min = platform_->min_user_address();
  uintptr_t max = platform_->max_user_address();
  if (length == 0 || addr % kPageSize != 0 || length % kPageSize != 0 ||
      addr < min || addr >= max || length > max - addr) {
    ThrowError(EINVAL, "address range outside the application's");
  }
}

long AddressSpace::Syscall(long nr, const uint64_t (&args)[6]) {
  if (released_.load()) ThrowError(ESRCH, "address space is released");
  pid_t self = gettid();
  std::shared_ptr<Context> context;
  {
    std::lock_guard<std::mutex> lock(threads_mu_);
    auto range = threads_.equal_range(self);
    for (auto it = range.first; it != range.second && !context; ++it) {
      context = it->second.second.lock();
    }
  }
  long ret;
  if (context && context->InjectFromTracer(this, self, nr, args, &ret)) {
    return ret;
  }
  return platform_->ControlSyscall(control_, nr, args);
}

void AddressSpace::ReapIdleThreads() {
  std::vector<std::shared_ptr<Context>> contexts;
  {
    std::lock_guard<std::mutex> lock(threads_mu_);
    for (const auto& entry : threads_) {
      if (std::shared_ptr<Context> context = entry.second.second.lock()) {
        contexts.push_back(std::move(context));
      }
    }
  }
  for (const auto& context : contexts) context->ReapIfIdle(this);
}

void AddressSpace::Register(pid_t tracer, Context* context) {
  std::lock_guard<std::mutex> lock(threads_mu_);
  threads_.emplace(tracer, std::make_pair(context, context->weak_from_this()));
}

void AddressSpace::Unregister(pid_t tracer, const Context* context) {
  std::lock_guard<std::mutex> lock(threads_mu_);
  auto range = threads_.equal_range(tracer);
  for (auto it = range.first; it != range.second; ++it) {
    if (it->second.first == context) {
      threads_.erase(it);
      return;
    }
  }
}

}  // namespace pyvisor::ptrace_platform
