#include "pkg/platform/ptrace/stub.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "pkg/platform/ptrace/error.h"

// The stub code. It only ever runs copied into the stub page, never at its
// link address, so every reference inside it is rip-relative to local labels.
// System call numbers are those of amd64: munmap 11, pause 34, exit 60,
// getppid 110, prctl 157; PR_SET_PDEATHSIG is 1 and SIGKILL 9.
asm(R"(
    .pushsection .text.pyvisor_ptrace_stub, "ax", @progbits
    .p2align 6

    .globl pyvisor_stub_begin
    .hidden pyvisor_stub_begin
pyvisor_stub_begin:
.Lbegin:
    // Master entry: munmap(0, page), then munmap(page + 4096, rest). The
    // second call fails harmlessly when the page is the last one.
    lea .Lbegin(%rip), %rbx
    xor %edi, %edi
    mov %rbx, %rsi
    mov $11, %eax
    syscall
    lea 4096(%rbx), %rdi
    mov .Ltask_size(%rip), %rsi
    sub %rdi, %rsi
    mov $11, %eax
    syscall
    jmp .Lpark

    .p2align 4
    .globl pyvisor_stub_syscall
    .hidden pyvisor_stub_syscall
pyvisor_stub_syscall:
    syscall
    // rcx is free: `syscall` clobbered it.
    mov .Lmarker(%rip), %rcx
    cmp %rcx, %r15
    jne .Ltrap
    test %rax, %rax
    jne .Ltrap
    // The child of an injected clone: die with the master stub.
    mov $157, %eax
    mov $1, %edi
    mov $9, %esi
    syscall
    mov $110, %eax
    syscall
    cmp %r14, %rax
    jne .Lexit

    .globl pyvisor_stub_park
    .hidden pyvisor_stub_park
pyvisor_stub_park:
.Lpark:
    mov $34, %eax
    syscall
    jmp .Lpark
    .globl pyvisor_stub_park_end
    .hidden pyvisor_stub_park_end
pyvisor_stub_park_end:

.Lexit:
    // The master stub died before this child could set its death signal.
    mov $60, %eax
    xor %edi, %edi
    syscall
    jmp .Lexit

    .globl pyvisor_stub_trap
    .hidden pyvisor_stub_trap
pyvisor_stub_trap:
.Ltrap:
    int3
    jmp .Ltrap

    .p2align 3
    .globl pyvisor_stub_marker
    .hidden pyvisor_stub_marker
pyvisor_stub_marker:
.Lmarker:
    .quad 0x4d52414d4e4f4c43
.Ltask_size:
    .quad 0x7ffffffff000
    .globl pyvisor_stub_end
    .hidden pyvisor_stub_end
pyvisor_stub_end:
    .popsection
)");

extern "C" {
extern const char pyvisor_stub_begin[] __attribute__((visibility("hidden")));
extern const char pyvisor_stub_syscall[] __attribute__((visibility("hidden")));
extern const char pyvisor_stub_park[] __attribute__((visibility("hidden")));
extern const char pyvisor_stub_park_end[] __attribute__((visibility("hidden")));
extern const char pyvisor_stub_trap[] __attribute__((visibility("hidden")));
extern const char pyvisor_stub_marker[] __attribute__((visibility("hidden")));
extern const char pyvisor_stub_end[] __attribute__((visibility("hidden")));
}

namespace pyvisor::ptrace_platform {
namespace {

uintptr_t Offset(const char* label) {
  return static_cast<uintptr_t>(label - pyvisor_stub_begin);
}

}  // namespace

StubPage::StubPage() {
  size_t size = Offset(pyvisor_stub_end);
  static_assert(kTaskSize % kPageSize == 0);
  if (size > kPageSize) ThrowError(E2BIG, "stub code size");

  // MAP_FIXED_NOREPLACE fails with EEXIST where something is mapped; older
  // kernels treat it as a hint, hence the address check.
  void* page = MAP_FAILED;
  for (uintptr_t addr = kTaskSize - kPageSize; addr >= kPageSize;
       addr -= kPageSize) {
    void* want = reinterpret_cast<void*>(addr);
    page = mmap(want, kPageSize, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (page == want) break;
    if (page != MAP_FAILED) {
      munmap(page, kPageSize);
      page = MAP_FAILED;
    } else if (errno != EEXIST) {
      ThrowErrno("mmap stub page");
    }
  }
  if (page == MAP_FAILED) ThrowError(ENOMEM, "mmap stub page");

  memcpy(page, pyvisor_stub_begin, size);
  if (mprotect(page, kPageSize, PROT_READ | PROT_EXEC) != 0) {
    int err = errno;
    munmap(page, kPageSize);
    ThrowError(err, "mprotect stub page");
  }

  uintptr_t base = reinterpret_cast<uintptr_t>(page);
  layout_.page = base;
  layout_.entry = base;
  layout_.syscall = base + Offset(pyvisor_stub_syscall);
  layout_.trap_rip = base + Offset(pyvisor_stub_trap) + 1;
  layout_.park_begin = base + Offset(pyvisor_stub_park);
  layout_.park_end = base + Offset(pyvisor_stub_park_end);
  memcpy(&layout_.clone_marker, pyvisor_stub_marker,
         sizeof(layout_.clone_marker));
}

StubPage::~StubPage() {
  munmap(reinterpret_cast<void*>(layout_.page), kPageSize);
}

}  // namespace pyvisor::ptrace_platform
