// A dynamically linked, position-independent program that checks what the
// kernel's ELF loader gave it: where it and its interpreter (ld.so) were
// placed, the auxiliary vector, a library loaded with dlopen, threads with
// thread-local storage, and execve of itself (a dynamic program executing a
// dynamic program).
//
// Usage: dynamic_helper [chain N]
//   With "chain N" and N > 0 it executes itself (by the path it was run by)
//   with "chain N-1"; at 0, or without arguments, it runs the checks. It
//   prints one line per failed check to stderr and exits with the number of
//   failures (0: all passed).

#define _GNU_SOURCE
#include <cpuid.h>
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

extern char _start[];
extern char end[];

static int failures;

// The auxiliary vector as the kernel wrote it, found after envp. (glibc's
// getauxval(AT_HWCAP) answers a value of its own on x86-64.)
static const ElfW(auxv_t) * auxv;

static unsigned long aux(unsigned long type) {
  for (const ElfW(auxv_t)* a = auxv; a->a_type != AT_NULL; a++) {
    if (a->a_type == type) return a->a_un.a_val;
  }
  return 0;
}

#define CHECK(cond, ...)                        \
  do {                                          \
    if (!(cond)) {                              \
      fprintf(stderr, "FAIL %s: ", #cond);      \
      fprintf(stderr, __VA_ARGS__);             \
      fputc('\n', stderr);                      \
      failures++;                               \
    }                                           \
  } while (0)

struct objects {
  // The main program (the first object dl_iterate_phdr reports).
  uintptr_t exe_bias;
  const ElfW(Phdr) * exe_phdr;
  int exe_phnum;
  // The interpreter, found by its program headers' address range.
  uintptr_t interp_bias;
  int seen;
};

static int visit(struct dl_phdr_info* info, size_t size, void* data) {
  (void)size;
  struct objects* o = data;
  if (o->seen++ == 0) {
    o->exe_bias = info->dlpi_addr;
    o->exe_phdr = info->dlpi_phdr;
    o->exe_phnum = info->dlpi_phnum;
    return 0;
  }
  if (info->dlpi_name != NULL && strstr(info->dlpi_name, "ld-linux") != NULL) {
    o->interp_bias = info->dlpi_addr;
  }
  return 0;
}

static __thread int tls_value = 7;

static void* thread_main(void* arg) {
  tls_value += (int)(intptr_t)arg;
  return (void*)(intptr_t)tls_value;
}

static void check_auxv(const char* argv0) {
  struct objects o = {0};
  dl_iterate_phdr(visit, &o);

  CHECK(aux(AT_PAGESZ) == 4096, "AT_PAGESZ=%lu", aux(AT_PAGESZ));
  CHECK(aux(AT_PHDR) == (uintptr_t)o.exe_phdr,
        "AT_PHDR=%#lx program headers at %p", aux(AT_PHDR),
        (void*)o.exe_phdr);
  CHECK(aux(AT_PHNUM) == (unsigned long)o.exe_phnum, "AT_PHNUM=%lu",
        aux(AT_PHNUM));
  CHECK(aux(AT_PHENT) == sizeof(ElfW(Phdr)), "AT_PHENT=%lu",
        aux(AT_PHENT));
  CHECK(aux(AT_ENTRY) == (uintptr_t)_start, "AT_ENTRY=%#lx _start=%p",
        aux(AT_ENTRY), (void*)_start);

  // A PIE is placed, as Linux places it, at two thirds of the address space
  // (ELF_ET_DYN_BASE, 0x555555554000) plus a random page offset.
  const ElfW(Ehdr)* ehdr = (const ElfW(Ehdr)*)o.exe_bias;
  CHECK(o.exe_bias != 0, "this helper must be built as a PIE");
  if (o.exe_bias != 0) {
    CHECK(memcmp(ehdr->e_ident, ELFMAG, SELFMAG) == 0 &&
              ehdr->e_type == ET_DYN,
          "no ELF header of type ET_DYN at the load bias %#lx",
          (unsigned long)o.exe_bias);
    CHECK(o.exe_bias % 4096 == 0, "bias %#lx", (unsigned long)o.exe_bias);
    CHECK(o.exe_bias >= 0x555555554000UL &&
              o.exe_bias < 0x555555554000UL + (1UL << 41),
          "PIE bias %#lx", (unsigned long)o.exe_bias);
  }

  // The interpreter: AT_BASE is its load bias, and it lies in the mmap
  // area, above the program and its heap.
  const uintptr_t base = aux(AT_BASE);
  CHECK(base != 0 && base % 4096 == 0, "AT_BASE=%#lx", base);
  CHECK(base == o.interp_bias, "AT_BASE=%#lx ld.so bias %#lx", base,
        (unsigned long)o.interp_bias);
  CHECK(base > (uintptr_t)end, "AT_BASE=%#lx below the program end %p", base,
        (void*)end);
  const ElfW(Ehdr)* iehdr = (const ElfW(Ehdr)*)base;
  CHECK(base != 0 && memcmp(iehdr->e_ident, ELFMAG, SELFMAG) == 0,
        "no ELF header at AT_BASE");

  // The heap starts after the program's bss.
  void* brk = sbrk(0);
  CHECK((uintptr_t)brk >= (uintptr_t)end, "brk %p below end %p", brk,
        (void*)end);

  const unsigned char* random = (const unsigned char*)aux(AT_RANDOM);
  CHECK(random != NULL, "no AT_RANDOM");
  if (random != NULL) {
    int nonzero = 0;
    for (int i = 0; i < 16; i++) nonzero |= random[i];
    CHECK(nonzero, "AT_RANDOM bytes are all zero");
  }

  const char* execfn = (const char*)aux(AT_EXECFN);
  CHECK(execfn != NULL && strcmp(execfn, argv0) == 0, "AT_EXECFN=%s argv0=%s",
        execfn ? execfn : "(null)", argv0);
  const char* platform = (const char*)aux(AT_PLATFORM);
  CHECK(platform != NULL && strcmp(platform, "x86_64") == 0, "AT_PLATFORM=%s",
        platform ? platform : "(null)");

  // AT_HWCAP on x86-64 is CPUID leaf 1's EDX; AT_HWCAP2 has two bits
  // (HWCAP2_RING3MWAIT, HWCAP2_FSGSBASE).
  unsigned int a, b, c, d;
  __cpuid(1, a, b, c, d);
  CHECK(aux(AT_HWCAP) == d, "AT_HWCAP=%#lx cpuid(1).edx=%#x",
        aux(AT_HWCAP), d);
  CHECK((aux(AT_HWCAP2) & ~3UL) == 0, "AT_HWCAP2=%#lx",
        aux(AT_HWCAP2));

  CHECK(aux(AT_UID) == getuid() && aux(AT_EUID) == geteuid() &&
            aux(AT_GID) == getgid() && aux(AT_EGID) == getegid(),
        "AT_UID/EUID/GID/EGID");
  CHECK(aux(AT_SECURE) == 0, "AT_SECURE=%lu", aux(AT_SECURE));

  // A vDSO is optional; when there is one it is an ELF image.
  const uintptr_t vdso = aux(AT_SYSINFO_EHDR);
  if (vdso != 0) {
    CHECK(memcmp((const void*)vdso, ELFMAG, SELFMAG) == 0,
          "no ELF header at AT_SYSINFO_EHDR %#lx", vdso);
  }

  // libc's clocks (through the vDSO where there is one) agree with the
  // system calls: a read between two system calls lies between them.
  for (int i = 0; i < 1000; i++) {
    struct timespec a, b, c;
    syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &a);
    clock_gettime(CLOCK_MONOTONIC, &b);
    syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &c);
    const long long na = a.tv_sec * 1000000000LL + a.tv_nsec;
    const long long nb = b.tv_sec * 1000000000LL + b.tv_nsec;
    const long long nc = c.tv_sec * 1000000000LL + c.tv_nsec;
    if (!(na <= nb && nb <= nc)) {
      CHECK(0, "CLOCK_MONOTONIC out of order: %lld %lld %lld", na, nb, nc);
      break;
    }
    struct timespec r;
    clock_gettime(CLOCK_REALTIME, &r);
    const long long sys_real = time(NULL);
    // A second apart at most (time() and the read straddle a second).
    if (r.tv_sec != sys_real && r.tv_sec + 1 != sys_real) {
      CHECK(0, "CLOCK_REALTIME %lld, time() %lld", (long long)r.tv_sec,
            sys_real);
      break;
    }
  }
  const int cpu = sched_getcpu();
  CHECK(cpu >= 0 && cpu < sysconf(_SC_NPROCESSORS_CONF), "sched_getcpu %d",
        cpu);

  // A shared library mapped from its file by ld.so at run time.
  void* libm = dlopen("libm.so.6", RTLD_NOW);
  CHECK(libm != NULL, "dlopen libm: %s", dlerror());
  if (libm != NULL) {
    double (*fn)(double) = (double (*)(double))dlsym(libm, "sqrt");
    CHECK(fn != NULL && fn(16.0) == 4.0, "sqrt from libm");
    dlclose(libm);
  }

  // Threads get their own copy of thread-local storage.
  pthread_t th;
  void* ret = NULL;
  CHECK(pthread_create(&th, NULL, thread_main, (void*)(intptr_t)5) == 0,
        "pthread_create");
  CHECK(pthread_join(th, &ret) == 0 && (intptr_t)ret == 12, "thread TLS %ld",
        (long)(intptr_t)ret);
  CHECK(tls_value == 7, "main TLS %d", tls_value);
}

int main(int argc, char** argv, char** envp) {
  char** p = envp;
  while (*p != NULL) p++;
  auxv = (const ElfW(auxv_t)*)(p + 1);
  if (argc == 3 && strcmp(argv[1], "chain") == 0) {
    const int n = atoi(argv[2]);
    if (n > 0) {
      char next[16];
      snprintf(next, sizeof(next), "%d", n - 1);
      char* const args[] = {argv[0], "chain", next, NULL};
      execv(argv[0], args);
      perror("execv");
      return 127;
    }
  }
  check_auxv(argv[0]);
  if (failures == 0) printf("ok\n");
  return failures;
}
