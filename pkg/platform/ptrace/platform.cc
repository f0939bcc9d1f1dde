#include "pkg/platform/ptrace/platform.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "pkg/platform/ptrace/address_space.h"
#include "pkg/platform/ptrace/context.h"
#include "pkg/platform/ptrace/error.h"
#include "pkg/platform/ptrace/seccomp.h"
#include "pkg/platform/ptrace/stub.h"
#include "pkg/platform/ptrace/tracee.h"

namespace pyvisor::ptrace_platform {

struct Platform::Request {
  enum class Kind {
    kNewAddressSpace,
    kCloneThread,
    kSyscall,
    kReleaseControl,
    kShutdown,
  };

  Kind kind;
  pid_t control = 0;
  long nr = 0;
  uint64_t args[6] = {};

  // Results, written by the platform thread.
  pid_t tgid = 0;
  pid_t tid = 0;
  pid_t thread = 0;  // kNewAddressSpace: the parked stub thread
  long ret = 0;
  int err = 0;
  std::string op;
  bool done = false;
};

namespace {

// FileDescriptor closes a descriptor when it goes out of scope.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// ReadMmapMinAddr returns vm.mmap_min_addr, at least one page.
uintptr_t ReadMmapMinAddr() {
  FileDescriptor fd(open("/proc/sys/vm/mmap_min_addr", O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) ThrowErrno("open /proc/sys/vm/mmap_min_addr");
  char buf[32] = {};
  ssize_t n = read(fd.get(), buf, sizeof(buf) - 1);
  if (n <= 0) ThrowErrno("read /proc/sys/vm/mmap_min_addr");
  uintptr_t value = strtoull(buf, nullptr, 10);
  value = (value + kPageSize - 1) & ~(kPageSize - 1);
  return std::max(value, kPageSize);
}

// async-signal-safe: a bare system call that touches no memory other than
// what its arguments point to, and does not set errno.
long RawSyscall(long nr, long a0 = 0, long a1 = 0, long a2 = 0, long a3 = 0,
                long a4 = 0) {
  long ret;
  register long r10 asm("r10") = a3;
  register long r8 asm("r8") = a4;
  asm volatile("syscall"
               : "=a"(ret)
               : "a"(nr), "D"(a0), "S"(a1), "d"(a2), "r"(r10), "r"(r8)
               : "rcx", "r11", "memory");
  return ret;
}

// The kernel's struct sigaction for rt_sigaction on amd64.
struct KernelSigaction {
  uintptr_t handler;
  unsigned long flags;
  uintptr_t restorer;
  uint64_t mask;
};

// What the master stub's child code needs, prepared before the clone.
struct MasterArgs {
  pid_t sentry_pid;
  uintptr_t entry;
  struct sock_fprog prog;
  uintptr_t rseq_area;  // glibc's rseq area of the cloning thread
  unsigned int rseq_size;
};

// The rseq signature of glibc on amd64 (RSEQ_SIG of <sys/rseq.h>).
constexpr long kRseqSig = 0x53053053;
constexpr long kRseqFlagUnregister = 1;
// The size glibc registers its rseq area with: __rseq_size may be smaller.
constexpr long kGlibcRseqLen = 32;

// MasterMain is the master stub's code between the clone and the stub page.
// async-signal-safe: runs in the child of a raw clone of a multithreaded
// process, so it allocates nothing, takes no locks, and makes raw system
// calls only (not even errno is written). Never returns.
[[noreturn]] void MasterMain(const MasterArgs& args) {
  // Die with the platform thread; if the sentry already died, the parent is
  // some reaper by now.
  RawSyscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL);
  if (RawSyscall(SYS_getppid) != args.sentry_pid) {
    RawSyscall(SYS_exit_group, 1);
  }

  // Leave the sentry's session so that terminal signals miss the stubs.
  RawSyscall(SYS_setsid);

  // Default dispositions, nothing blocked, except that SIGCHLD is ignored so
  // that exited address space stubs (children of this one) are reaped by the
  // kernel.
  KernelSigaction dfl = {};
  KernelSigaction ign = {};
  ign.handler = reinterpret_cast<uintptr_t>(SIG_IGN);
  for (int sig = 1; sig <= 64; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    RawSyscall(SYS_rt_sigaction, sig, reinterpret_cast<long>(&dfl), 0, 8);
  }
  RawSyscall(SYS_rt_sigaction, SIGCHLD, reinterpret_cast<long>(&ign), 0, 8);
  uint64_t empty_mask = 0;
  RawSyscall(SYS_rt_sigprocmask, SIG_SETMASK,
             reinterpret_cast<long>(&empty_mask), 0, 8);

  // A clone inherits the rseq registration of the cloning thread, and the
  // kernel writes to the rseq area on every return to user mode. The area
  // lives in the thread's TLS, which the stub code unmaps: the kernel would
  // fail that write forever. Unregister it (glibc registered it).
  if (args.rseq_size != 0 &&
      RawSyscall(SYS_rseq, args.rseq_area, args.rseq_size, kRseqFlagUnregister,
                 kRseqSig) != 0 &&
      RawSyscall(SYS_rseq, args.rseq_area, kGlibcRseqLen, kRseqFlagUnregister,
                 kRseqSig) != 0) {
    RawSyscall(SYS_exit_group, 4);
  }

  if (RawSyscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
      RawSyscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0,
                 reinterpret_cast<long>(&args.prog)) != 0) {
    RawSyscall(SYS_exit_group, 2);
  }

  // The stub code unmaps everything else, this stack included.
  asm volatile("jmp *%0" : : "r"(args.entry) : "memory");
  __builtin_unreachable();
}

// WaitExit waits until tid, which was sent SIGKILL, has exited and is
// reaped. Stops reported on the way are left alone: SIGKILL ends them.
void WaitExit(pid_t tid) {
  while (!IsExit(WaitTid(tid))) {
  }
}

// OpenPidfd returns a pidfd of the thread group leader pid, or -1.
int OpenPidfd(pid_t pid) {
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
}

// WaitGone waits (briefly: it was sent SIGKILL) until the process of a
// pidfd is gone: exited and reaped. A stub process leader is not a child of
// the sentry, so this cannot be a waitpid. Since Linux 6.9 a pidfd reports
// POLLHUP once its task is reaped; before, only POLLIN once the process has
// exited, and the reaping follows within microseconds. The kernel does not
// wake pollers when a task is reaped, hence the polling.
void WaitGone(int pidfd) {
  struct pollfd pfd = {pidfd, POLLIN, 0};
  int exited_polls = 0;
  for (int attempt = 0; attempt < 4000; ++attempt) {
    pfd.revents = 0;
    if (poll(&pfd, 1, 0) > 0) {
      if ((pfd.revents & (POLLHUP | POLLERR | POLLNVAL)) != 0) return;
      if (++exited_polls > 100) return;
    }
    if (attempt < 200) {
      sched_yield();
    } else {
      struct timespec ts = {0, 250000};
      nanosleep(&ts, nullptr);
    }
  }
}

// WaitExitQuietly is WaitExit for clean-up paths: a thread that is not ours
// to wait for (ECHILD) is fine.
void WaitExitQuietly(pid_t tid) {
  try {
    WaitExit(tid);
  } catch (const PtraceError&) {
  }
}

}  // namespace

Platform::Platform(int memfile_fd, const PlatformOptions& options)
    : memfile_fd_(memfile_fd), options_(options) {}

std::shared_ptr<Platform> Platform::Create(int memfile_fd,
                                           const PlatformOptions& options) {
  if (fcntl(memfile_fd, F_GETFD) < 0) ThrowErrno("memory file descriptor");
  std::shared_ptr<Platform> platform(new Platform(memfile_fd, options));
  platform->min_user_address_ = ReadMmapMinAddr();
  platform->filter_ = BuildStubFilter();
  platform->config_.layout = platform->stub_.layout();
  platform->config_.sentry_pid = getpid();

  platform->thread_ = std::thread(&Platform::Run, platform.get());
  std::unique_lock<std::mutex> lock(platform->mu_);
  platform->done_cv_.wait(lock, [&] { return platform->started_; });
  if (platform->start_err_ != 0) {
    lock.unlock();
    platform->thread_.join();
    ThrowError(platform->start_err_, platform->start_op_);
  }
  return platform;
}

Platform::~Platform() { Close(); }

std::shared_ptr<AddressSpace> Platform::NewAddressSpace() {
  if (getpid() != config_.sentry_pid) {
    ThrowError(EBADF, "ptrace platform used in a forked child");
  }
  Spare spare = {};
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) ThrowError(EBADF, "ptrace platform is closed");
    if (!spares_.empty()) {
      spare = spares_.front();
      spares_.pop_front();
      request_cv_.notify_one();  // time to make another
    }
  }
  if (spare.tgid == 0) {
    Request req{Request::Kind::kNewAddressSpace};
    Submit(&req);
    spare = {req.tgid, req.tid, req.thread};
  }
  std::shared_ptr<AddressSpace> as(
      new AddressSpace(shared_from_this(), spare.tgid, spare.control));
  as->parked_thread_.store(spare.thread);
  std::lock_guard<std::mutex> lock(mu_);
  spaces_.erase(std::remove_if(spaces_.begin(), spaces_.end(),
                               [](const std::weak_ptr<AddressSpace>& w) {
                                 return w.expired();
                               }),
                spaces_.end());
  spaces_.push_back(as);
  return as;
}

std::shared_ptr<Context> Platform::NewContext() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) ThrowError(EBADF, "ptrace platform is closed");
  }
  return std::shared_ptr<Context>(new Context(shared_from_this()));
}

void Platform::Close() {
  std::lock_guard<std::mutex> close_lock(close_mu_);
  if (!thread_.joinable()) return;
  // In a forked child of the sentry there is no platform thread to ask, and
  // the stubs are the parent's.
  if (getpid() != config_.sentry_pid) {
    thread_.detach();
    return;
  }
  Request req{Request::Kind::kShutdown};
  {
    std::unique_lock<std::mutex> lock(mu_);
    closed_ = true;
    queue_.push_back(&req);
    request_cv_.notify_one();
    done_cv_.wait(lock, [&] { return req.done; });
  }
  thread_.join();
}

void Platform::Submit(Request* req) {
  if (getpid() != config_.sentry_pid) {
    ThrowError(EBADF, "ptrace platform used in a forked child");
  }
  std::unique_lock<std::mutex> lock(mu_);
  if (closed_) ThrowError(EBADF, "ptrace platform is closed");
  queue_.push_back(req);
  request_cv_.notify_one();
  done_cv_.wait(lock, [&] { return req->done; });
  if (req->err != 0) ThrowError(req->err, req->op);
}

long Platform::ControlSyscall(pid_t control, long nr,
                              const uint64_t (&args)[6]) {
  Request req{Request::Kind::kSyscall};
  req.control = control;
  req.nr = nr;
  std::copy(args, args + 6, req.args);
  Submit(&req);
  return req.ret;
}

pid_t Platform::CloneThread(pid_t control) {
  Request req{Request::Kind::kCloneThread};
  req.control = control;
  Submit(&req);
  return req.tid;
}

void Platform::ReleaseControl(pid_t control) {
  Request req{Request::Kind::kReleaseControl};
  req.control = control;
  Submit(&req);
}

void Platform::Run() {
  // Process-directed signals are for the sentry's other threads.
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);

  try {
    StartMaster();
  } catch (const PtraceError& e) {
    std::lock_guard<std::mutex> lock(mu_);
    start_err_ = e.err();
    start_op_ = e.op();
    started_ = true;
    done_cv_.notify_all();
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    started_ = true;
    done_cv_.notify_all();
  }

  for (;;) {
    Request* req = nullptr;
    {
      std::unique_lock<std::mutex> lock(mu_);
      request_cv_.wait(lock,
                       [&] { return !queue_.empty() || NeedSpareLocked(); });
      if (!queue_.empty()) {
        req = queue_.front();
        queue_.pop_front();
      }
    }
    if (req == nullptr) {
      MakeSpare();
      continue;
    }
    bool shutdown = req->kind == Request::Kind::kShutdown;
    Complete(req);
    if (shutdown) return;
  }
}

void Platform::Complete(Request* req) {
  try {
    Handle(req);
  } catch (const PtraceError& e) {
    req->err = e.err();
    req->op = e.op();
  }
  std::lock_guard<std::mutex> lock(mu_);
  req->done = true;
  done_cv_.notify_all();
}

void Platform::ServeWaiting() {
  for (;;) {
    Request* req;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (queue_.empty()) return;
      req = queue_.front();
      // New address spaces and the shutdown wait until the spare is made.
      if (req->kind != Request::Kind::kSyscall &&
          req->kind != Request::Kind::kCloneThread &&
          req->kind != Request::Kind::kReleaseControl) {
        return;
      }
      queue_.pop_front();
    }
    Complete(req);
  }
}

void Platform::StartMaster() {
  MasterArgs args = {};
  args.sentry_pid = config_.sentry_pid;
  args.entry = config_.layout.entry;
  args.prog.len = static_cast<unsigned short>(filter_.size());
  args.prog.filter = filter_.data();
  args.rseq_size = __rseq_size;
  args.rseq_area =
      reinterpret_cast<uintptr_t>(__builtin_thread_pointer()) + __rseq_offset;

  // All signals are blocked on this thread, so no handler can run in the
  // child before MasterMain resets the dispositions. No CLONE_VM: the child
  // gets a copy of the sentry's memory, which the stub code then unmaps.
  // Exit signal 0: the sentry gets no SIGCHLD; this thread reaps it with
  // __WALL.
  long pid = syscall(SYS_clone, CLONE_FILES, 0, 0, 0, 0);
  if (pid == 0) MasterMain(args);
  if (pid < 0) ThrowErrno("clone master stub");
  config_.master_pid = static_cast<pid_t>(pid);

  auto fail = [&](int err, const char* op) {
    kill(config_.master_pid, SIGKILL);
    WaitExit(config_.master_pid);
    ThrowError(err, op);
  };
  try {
    if (!SeizeParked(config_.master_pid, config_.layout)) {
      ThrowError(ESRCH, "master stub exited");
    }
  } catch (const PtraceError& e) {
    if (e.err() == ESRCH) throw;  // reaped
    fail(e.err(), e.op().c_str());
  }

  if (ptrace(PTRACE_GETREGS, config_.master_pid, nullptr, &config_.regs) != 0) {
    fail(errno, "PTRACE_GETREGS master stub");
  }

  // The XSAVE area size as ptrace sees it: the kernel shortens iov_len to
  // the size of the regset.
  std::vector<uint8_t> buf(1 << 16);
  struct iovec iov = {buf.data(), buf.size()};
  if (ptrace(PTRACE_GETREGSET, config_.master_pid, NT_X86_XSTATE, &iov) == 0) {
    fp_regset_ = NT_X86_XSTATE;
  } else {
    iov.iov_len = 512;
    if (ptrace(PTRACE_GETREGSET, config_.master_pid, NT_PRFPREG, &iov) != 0) {
      fail(errno, "PTRACE_GETREGSET NT_PRFPREG");
    }
    fp_regset_ = NT_PRFPREG;
  }
  fpstate_size_ = iov.iov_len;
}

void Platform::Handle(Request* req) {
  switch (req->kind) {
    case Request::Kind::kNewAddressSpace:
      HandleNewAddressSpace(req);
      return;

    case Request::Kind::kCloneThread:
    case Request::Kind::kSyscall: {
      if (controls_.count(req->control) == 0) {
        ThrowError(ESRCH, "address space stub is gone");
      }
      bool clone = req->kind == Request::Kind::kCloneThread;
      const uint64_t clone_args[6] = {kCloneThreadFlags};
      long nr = clone ? SYS_clone : req->nr;
      if (!Inject(req->control, config_, nr, clone ? clone_args : req->args,
                  clone, &req->ret, nullptr)) {
        controls_.erase(req->control);
        ThrowError(ESRCH, "address space stub died");
      }
      if (clone) {
        if (req->ret < 0) ThrowError(-req->ret, "clone stub thread");
        req->tid = static_cast<pid_t>(req->ret);
      }
      return;
    }

    case Request::Kind::kReleaseControl:
      ReapControl(req->control);
      return;

    case Request::Kind::kShutdown:
      HandleShutdown();
      return;
  }
}

bool Platform::NeedSpareLocked() const {
  return !closed_ && !spares_failed_ &&
         spares_.size() < static_cast<size_t>(options_.spare_address_spaces);
}

void Platform::MakeSpare() {
  Spare spare = {};
  try {
    MakeAddressSpace(&spare.tgid, &spare.control, &spare.thread, true);
  } catch (const PtraceError&) {
    // NewAddressSpace makes its own and reports the error.
    std::lock_guard<std::mutex> lock(mu_);
    spares_failed_ = true;
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  spares_.push_back(spare);
}

void Platform::HandleNewAddressSpace(Request* req) {
  MakeAddressSpace(&req->tgid, &req->tid, &req->thread, false);
}

void Platform::MakeAddressSpace(pid_t* tgid_out, pid_t* control_out,
                                pid_t* thread_out, bool serve_between) {
  const uint64_t process_args[6] = {kCloneProcessFlags};
  const uint64_t thread_args[6] = {kCloneThreadFlags};
  // A spare is made while nothing waits; what arrives meanwhile (system
  // calls of the loader in another address space, say) is served between
  // the steps rather than after the whole.
  auto between = [&] {
    if (serve_between) ServeWaiting();
  };
  long ret;
  if (!Inject(config_.master_pid, config_, SYS_clone, process_args, true, &ret,
              nullptr)) {
    ThrowError(ESRCH, "master stub died");
  }
  if (ret < 0) ThrowError(-ret, "clone address space stub");
  pid_t tgid = static_cast<pid_t>(ret);
  between();

  // The leader clones the control thread, then parks untraced (see
  // platform.h).
  pid_t control = 0;
  try {
    if (!SeizeParked(tgid, config_.layout)) {
      ThrowError(ESRCH, "address space stub exited");
    }
    between();
    if (!Inject(tgid, config_, SYS_clone, thread_args, true, &ret, nullptr)) {
      ThrowError(ESRCH, "address space stub died");
    }
    if (ret < 0) ThrowError(-ret, "clone control thread");
    control = static_cast<pid_t>(ret);
    if (!ParkAndDetach(tgid, config_)) {
      ThrowError(ESRCH, "address space stub died");
    }
    if (!SeizeParked(control, config_.layout)) {
      ThrowError(ESRCH, "address space control thread exited");
    }
    between();
    // The first Context's stub thread, parked untraced until that Context
    // seizes it.
    if (!Inject(control, config_, SYS_clone, thread_args, true, &ret,
                nullptr)) {
      ThrowError(ESRCH, "address space stub died");
    }
    if (ret < 0) ThrowError(-ret, "clone stub thread");
    *thread_out = static_cast<pid_t>(ret);
  } catch (const PtraceError&) {
    // Whichever of the two threads is still traced by this thread must be
    // reaped here, the control thread first: a traced leader cannot be
    // reaped before it. Threads that are not (or no longer) traced are
    // reaped by the kernel, and waiting for them fails with ECHILD.
    kill(tgid, SIGKILL);
    if (control != 0) WaitExitQuietly(control);
    WaitExitQuietly(tgid);
    throw;
  }
  controls_[control] = tgid;
  *tgid_out = tgid;
  *control_out = control;
}

void Platform::ReapControl(pid_t control) {
  auto it = controls_.find(control);
  if (it == controls_.end()) return;  // already reaped
  pid_t tgid = it->second;
  controls_.erase(it);
  kill(tgid, SIGKILL);
  // The leader cannot be reaped before the control thread, so its pid is
  // still its own here.
  FileDescriptor pidfd(OpenPidfd(tgid));
  WaitExit(control);
  if (pidfd.get() >= 0) WaitGone(pidfd.get());
}

void Platform::HandleShutdown() {
  {
    // Their control threads are in controls_.
    std::lock_guard<std::mutex> lock(mu_);
    spares_.clear();
  }
  for (const auto& [control, tgid] : controls_) kill(tgid, SIGKILL);

  // Stub threads of idle contexts: a dead stub process can only go away once
  // they are reaped. Busy contexts reap their own.
  std::vector<std::weak_ptr<AddressSpace>> spaces;
  {
    std::lock_guard<std::mutex> lock(mu_);
    spaces.swap(spaces_);
  }
  for (const auto& weak : spaces) {
    if (std::shared_ptr<AddressSpace> as = weak.lock()) {
      as->released_.store(true);
      as->ReapIdleThreads();
    }
  }

  while (!controls_.empty()) ReapControl(controls_.begin()->first);
  kill(config_.master_pid, SIGKILL);
  WaitExit(config_.master_pid);
}

}  // namespace pyvisor::ptrace_platform
