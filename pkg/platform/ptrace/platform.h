// The ptrace platform: application code runs in stub processes, traced by
// sentry threads and resumed with PTRACE_SYSEMU.
//
// Processes and threads:
//
//   sentry -- master stub (child of the platform thread, traced by it)
//               `- one stub process per AddressSpace (children of the master)
//                    |- leader: parked, untraced
//                    |- control thread: traced by the platform thread
//                    `- one stub thread per Context that ran in it, traced by
//                       that Context's host thread
//
// The master stub is cloned from the sentry without CLONE_VM but with
// CLONE_FILES: it shares the sentry's descriptor table, so the MemoryFile
// descriptor number is valid in it and in every stub process cloned from it.
// It installs the stub seccomp filter (seccomp.h), drops every mapping but
// the stub page (stub.h) and parks. New address spaces are clones of the
// master made by injecting clone() into it, so they inherit the filter and
// none of the sentry's memory, and are unaffected by whatever filter the
// sentry installs on itself later.
//
// ptrace obeys only the tracer thread, so one native thread, the platform
// thread, is the tracer of the master and of every control thread; other
// threads send it requests. A Context's stub thread is traced by the
// Context's own host thread, which runs it without any hand-off.
//
// Why a control thread that is not the leader: a thread group leader that
// has exited cannot be reaped until every other thread of its group has been
// reaped, so waiting for a dying leader could block the platform thread until
// some idle Context reaps its stub thread. Non-leader threads are reapable as
// soon as they exit. The leader therefore only parks, untraced, and the
// platform thread traces a second thread.
//
// Spares: the platform thread makes address spaces ahead of demand while no
// request waits (PlatformOptions::spare_address_spaces), each with one stub
// thread already cloned and parked, untraced, for the first Context that
// switches into it (AddressSpace::parked_thread_). System calls, thread
// clones and releases that arrive while a spare is being made are served
// between its steps; new address spaces and the shutdown wait for it.
// Shortcoming: a spare whose stub process was killed from outside while it
// waited is handed out all the same, and its first use fails as that of
// any dead stub does (the task sees its context die); there is no liveness
// check on the way out of the pool.
//
// Lifetime: stubs die with the sentry. Every tracee is seized with
// PTRACE_O_EXITKILL (SIGKILL when its tracer thread exits); the master and
// every stub process set PR_SET_PDEATHSIG to SIGKILL and check that their
// parent is still the expected one after setting it. A parent-death signal
// fires when the parent *thread* exits, which is why the master is cloned
// from the long-lived platform thread.
//
// waitpid: any thread of the sentry may wait for any tracee of any other
// sentry thread, so the sentry must never call waitpid(-1) or wait(): it
// would steal ptrace stops from the platform.

#ifndef PKG_PLATFORM_PTRACE_PLATFORM_H_
#define PKG_PLATFORM_PTRACE_PLATFORM_H_

#include <linux/filter.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "pkg/platform/ptrace/stub.h"
#include "pkg/platform/ptrace/tracee.h"

namespace pyvisor::ptrace_platform {

class AddressSpace;
class Context;

// Layout of the state buffer shared with pkg/platform/platform.py.
inline constexpr size_t kRegsSize = 216;  // struct user_regs_struct
inline constexpr size_t kSiginfoOffset = 216;
inline constexpr size_t kSiginfoSize = 128;
inline constexpr size_t kFpstateOffset = kSiginfoOffset + kSiginfoSize;

// Event kinds returned by Context::Switch.
inline constexpr int kEventSyscall = 0;
inline constexpr int kEventFault = 1;
inline constexpr int kEventSignal = 2;
inline constexpr int kEventInterrupt = 3;
inline constexpr int kEventDied = 4;

// Flags of Context::Switch.
inline constexpr int kSwitchSetFpstate = 1;

// PlatformOptions tune a Platform.
struct PlatformOptions {
  // Pin each stub thread to the CPU its tracer last ran on: a ptrace round
  // trip costs several times more across CPUs.
  bool pin_stub_threads = true;

  // How many address spaces the platform thread keeps ready, made while it
  // has nothing else to do: NewAddressSpace takes one without waiting for
  // the several ptrace stops that make a stub process (fork and execve each
  // need one). Each costs an idle stub process.
  int spare_address_spaces = 1;
};

// Platform owns the stub page, the master stub and the platform thread.
class Platform : public std::enable_shared_from_this<Platform> {
 public:
  // Create starts a platform whose address spaces map memfile_fd, a
  // descriptor that must stay open (at the same number) until Close. Throws
  // PtraceError.
  static std::shared_ptr<Platform> Create(int memfile_fd,
                                          const PlatformOptions& options = {});

  // Closes the platform if Close was not called.
  ~Platform();

  Platform(const Platform&) = delete;
  Platform& operator=(const Platform&) = delete;

  // min_user_address is the lowest address an application may map:
  // vm.mmap_min_addr, at least one page.
  uintptr_t min_user_address() const { return min_user_address_; }

  // max_user_address is one past the highest address an application may
  // map: the start of the stub page.
  uintptr_t max_user_address() const { return stub_.layout().page; }

  // fpstate_size is the size of the XSAVE area (or of the FXSAVE area if the
  // host has no XSAVE) as ptrace reads and writes it.
  size_t fpstate_size() const { return fpstate_size_; }

  // master_pid is the pid of the master stub.
  pid_t master_pid() const { return config_.master_pid; }

  // NewAddressSpace returns a new, empty address space. Throws PtraceError.
  std::shared_ptr<AddressSpace> NewAddressSpace();

  // NewContext returns a new context. Throws PtraceError.
  std::shared_ptr<Context> NewContext();

  // Close kills every stub process, reaps what it can and stops the platform
  // thread. Contexts running a stub thread see EVENT_DIED. Later calls into
  // the platform fail with EBADF.
  void Close();

 private:
  friend class AddressSpace;
  friend class Context;

  struct Request;

  Platform(int memfile_fd, const PlatformOptions& options);

  // Client side: called by AddressSpace and Context from any thread.
  void Submit(Request* req);
  long ControlSyscall(pid_t control, long nr, const uint64_t (&args)[6]);
  pid_t CloneThread(pid_t control);
  void ReleaseControl(pid_t control);

  const StubConfig& config() const { return config_; }
  int fp_regset() const { return fp_regset_; }
  int memfile_fd() const { return memfile_fd_; }
  const PlatformOptions& options() const { return options_; }

  // Platform thread side.
  void Run();
  void StartMaster();
  void Handle(Request* req);
  void HandleNewAddressSpace(Request* req);
  void HandleShutdown();
  void ReapControl(pid_t control);
  void Complete(Request* req);
  void ServeWaiting();
  void MakeAddressSpace(pid_t* tgid, pid_t* control, pid_t* thread,
                        bool serve_between);
  void MakeSpare();
  bool NeedSpareLocked() const;

  const int memfile_fd_;
  const PlatformOptions options_;
  StubPage stub_;
  uintptr_t min_user_address_ = kPageSize;
  // Set by the platform thread before it reports that it started.
  StubConfig config_;
  size_t fpstate_size_ = 0;
  int fp_regset_ = 0;
  std::vector<sock_filter> filter_;

  // Control threads and their stub processes (tgids). Platform thread only.
  std::map<pid_t, pid_t> controls_;

  std::mutex close_mu_;  // serializes Close
  std::mutex mu_;
  std::condition_variable request_cv_;
  std::condition_variable done_cv_;
  // Guarded by mu_.
  std::deque<Request*> queue_;
  bool started_ = false;
  bool closed_ = false;
  int start_err_ = 0;
  std::string start_op_;
  std::vector<std::weak_ptr<AddressSpace>> spaces_;
  // Spare address spaces: {tgid, control, parked thread}.
  struct Spare {
    pid_t tgid;
    pid_t control;
    pid_t thread;
  };
  std::deque<Spare> spares_;
  // Set when making a spare failed: no more are made.
  bool spares_failed_ = false;

  std::thread thread_;
};

}  // namespace pyvisor::ptrace_platform

#endif  // PKG_PLATFORM_PTRACE_PLATFORM_H_
