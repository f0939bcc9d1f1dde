// An address space of the ptrace platform: one stub process.

#ifndef PKG_PLATFORM_PTRACE_ADDRESS_SPACE_H_
#define PKG_PLATFORM_PTRACE_ADDRESS_SPACE_H_

#include <stdint.h>
#include <sys/types.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>

namespace pyvisor::ptrace_platform {

class Context;
class Platform;

// AddressSpace is a stub process whose mappings are ranges of the
// MemoryFile, made by injecting mmap, munmap and mprotect into it. Its
// methods may be called from any thread. A call from a thread whose Context
// owns a stub thread in this address space is injected into that stub thread
// directly; any other call goes through the platform thread, which injects
// into the address space's control thread.
class AddressSpace : public std::enable_shared_from_this<AddressSpace> {
 public:
  // Releases the address space if Release was not called.
  ~AddressSpace();

  AddressSpace(const AddressSpace&) = delete;
  AddressSpace& operator=(const AddressSpace&) = delete;

  // MapFile maps [offset, offset+length) of the MemoryFile at addr with
  // protection prot (PROT_* bits), MAP_SHARED|MAP_FIXED, replacing whatever
  // was mapped there; precommit adds MAP_POPULATE. addr, length and offset
  // must be page-aligned and the range inside [min_user_address,
  // max_user_address), else EINVAL. Throws PtraceError.
  void MapFile(uintptr_t addr, uint64_t length, uint64_t offset, int prot,
               bool precommit);

  // Unmap removes every mapping in [addr, addr+length). Throws PtraceError.
  void Unmap(uintptr_t addr, uint64_t length);

  // Protect changes the protection of [addr, addr+length). Throws
  // PtraceError.
  void Protect(uintptr_t addr, uint64_t length, int prot);

  // Release kills the stub process (SIGKILL to its thread group) and reaps
  // its control thread and the stub threads of idle Contexts. A Context whose
  // host thread is running or using its stub thread here at that moment
  // reaps it itself and reports EVENT_DIED. Calls after Release fail with
  // ESRCH. Throws PtraceError.
  void Release();

  // pid is the pid (thread group id) of the stub process.
  pid_t pid() const { return tgid_; }

  // control_tid is the thread id of the control thread.
  pid_t control_tid() const { return control_; }

  // released reports whether Release was called.
  bool released() const { return released_.load(); }

 private:
  friend class Context;
  friend class Platform;

  AddressSpace(std::shared_ptr<Platform> platform, pid_t tgid, pid_t control);

  void CheckRange(uintptr_t addr, uint64_t length) const;
  long Syscall(long nr, const uint64_t (&args)[6]);
  void ReapIdleThreads();
  void Register(pid_t tracer, Context* context);
  void Unregister(pid_t tracer, const Context* context);

  const std::shared_ptr<Platform> platform_;
  const pid_t tgid_;
  const pid_t control_;
  std::atomic<bool> released_{false};
  // A stub thread cloned with the address space, parked and untraced, for
  // the first Context that switches in (0: taken, or none).
  std::atomic<pid_t> parked_thread_{0};

  // threads_mu_ is a leaf lock: nothing else is locked while it is held.
  std::mutex threads_mu_;
  // Contexts with a stub thread here, by the thread id of their tracer.
  std::unordered_multimap<pid_t,
                          std::pair<const Context*, std::weak_ptr<Context>>>
      threads_;
};

}  // namespace pyvisor::ptrace_platform

#endif  // PKG_PLATFORM_PTRACE_ADDRESS_SPACE_H_
