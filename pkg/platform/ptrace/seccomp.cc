#include "pkg/platform/ptrace/seccomp.h"

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <vector>

#include "pkg/platform/ptrace/error.h"

namespace pyvisor::ptrace_platform {
namespace {

// The vsyscall page of amd64.
constexpr uint64_t kVsyscallStart = 0xffffffffff600000;
constexpr uint64_t kVsyscallEnd = kVsyscallStart + 0x1000;
// System call numbers with this bit set are x32 calls.
constexpr uint32_t kX32Bit = 0x40000000;

// Labels of a BpfBuilder program.
enum Label { kNext = -1, kAllow, kKill, kClone, kPrctl, kVsyscall, kLabels };

// BpfBuilder assembles a BPF program with forward jumps to labels.
class BpfBuilder {
 public:
  void Stmt(uint16_t code, uint32_t k) { Add(code, k, kNext, kNext); }

  // Load loads the 32-bit word at offset off of struct seccomp_data.
  void Load(uint32_t off) { Stmt(BPF_LD | BPF_W | BPF_ABS, off); }

  void Jump(uint16_t op, uint32_t k, Label jt, Label jf) {
    Add(BPF_JMP | op | BPF_K, k, jt, jf);
  }

  void Bind(Label label) { bound_[label] = static_cast<int>(insns_.size()); }

  std::vector<sock_filter> Build() const {
    std::vector<sock_filter> prog;
    for (size_t i = 0; i < insns_.size(); ++i) {
      const Insn& insn = insns_[i];
      prog.push_back(
          {insn.code, Target(i, insn.jt), Target(i, insn.jf), insn.k});
    }
    return prog;
  }

 private:
  struct Insn {
    uint16_t code;
    uint32_t k;
    Label jt;
    Label jf;
  };

  void Add(uint16_t code, uint32_t k, Label jt, Label jf) {
    insns_.push_back({code, k, jt, jf});
  }

  uint8_t Target(size_t from, Label label) const {
    if (label == kNext) return 0;
    int distance = bound_[label] - static_cast<int>(from) - 1;
    if (bound_[label] < 0 || distance < 0 || distance > 255) {
      ThrowError(EINVAL, "seccomp filter jump");
    }
    return static_cast<uint8_t>(distance);
  }

  std::vector<Insn> insns_;
  int bound_[kLabels] = {-1, -1, -1, -1, -1};
};

constexpr uint32_t ArgLow(int i) {
  return offsetof(struct seccomp_data, args) + 8 * i;
}
constexpr uint32_t ArgHigh(int i) { return ArgLow(i) + 4; }

}  // namespace

std::vector<sock_filter> BuildStubFilter() {
  BpfBuilder b;
  b.Load(offsetof(struct seccomp_data, arch));
  b.Jump(BPF_JEQ, AUDIT_ARCH_X86_64, kNext, kKill);
  b.Load(offsetof(struct seccomp_data, nr));
  b.Jump(BPF_JGE, kX32Bit, kKill, kNext);
  // The calls tracers inject and the stub code makes.
  for (uint32_t nr :
       {SYS_mmap, SYS_munmap, SYS_mprotect, SYS_exit, SYS_pause, SYS_getppid}) {
    b.Jump(BPF_JEQ, nr, kAllow, kNext);
  }
  b.Jump(BPF_JEQ, SYS_clone, kClone, kNext);
  b.Jump(BPF_JEQ, SYS_prctl, kPrctl, kNext);
  for (uint32_t nr : {SYS_gettimeofday, SYS_time, SYS_getcpu}) {
    b.Jump(BPF_JEQ, nr, kVsyscall, kNext);
  }
  b.Stmt(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);

  // clone(flags, ...) with exactly one of the two injected flag sets.
  b.Bind(kClone);
  b.Load(ArgHigh(0));
  b.Jump(BPF_JEQ, 0, kNext, kKill);
  b.Load(ArgLow(0));
  b.Jump(BPF_JEQ, kCloneProcessFlags, kAllow, kNext);
  b.Jump(BPF_JEQ, kCloneThreadFlags, kAllow, kKill);

  // prctl(PR_SET_PDEATHSIG, SIGKILL) only.
  b.Bind(kPrctl);
  b.Load(ArgHigh(0));
  b.Jump(BPF_JEQ, 0, kNext, kKill);
  b.Load(ArgLow(0));
  b.Jump(BPF_JEQ, PR_SET_PDEATHSIG, kNext, kKill);
  b.Load(ArgHigh(1));
  b.Jump(BPF_JEQ, 0, kNext, kKill);
  b.Load(ArgLow(1));
  b.Jump(BPF_JEQ, SIGKILL, kAllow, kKill);

  // Legacy vsyscall emulation: the instruction pointer is in that page.
  b.Bind(kVsyscall);
  b.Load(offsetof(struct seccomp_data, instruction_pointer) + 4);
  b.Jump(BPF_JEQ, kVsyscallStart >> 32, kNext, kKill);
  b.Load(offsetof(struct seccomp_data, instruction_pointer));
  b.Jump(BPF_JGE, static_cast<uint32_t>(kVsyscallStart), kNext, kKill);
  b.Jump(BPF_JGE, static_cast<uint32_t>(kVsyscallEnd), kKill, kAllow);

  b.Bind(kAllow);
  b.Stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  b.Bind(kKill);
  b.Stmt(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
  return b.Build();
}

}  // namespace pyvisor::ptrace_platform
