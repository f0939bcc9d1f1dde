// The sandbox's vDSO: clock_gettime, gettimeofday, time and getcpu answered
// in the application's own address space, without a system call.
//
// The page just below the vDSO's ELF header (the "[vvar]" mapping) holds
// struct vvar, which the sentry keeps up to date (pkg/sentry/time/
// vdso_clock.py): the clocks as a linear function of the CPU's time-stamp
// counter, published under a sequence count, and a table from host CPU
// numbers to the sandbox's. Whatever the page cannot answer (another clock,
// a timezone, a page the sentry has not validated) becomes the system call,
// which the sentry serves as usual.
//
// Built without libc, position-independent, with no relocations: nothing
// here may refer to an absolute address.

#include <stdint.h>

#define SYS_gettimeofday 96
#define SYS_time 201
#define SYS_clock_gettime 228
#define SYS_getcpu 309

#define CLOCK_REALTIME 0
#define CLOCK_MONOTONIC 1
#define CLOCK_REALTIME_COARSE 5
#define CLOCK_MONOTONIC_COARSE 6
#define CLOCK_BOOTTIME 7

#define VVAR_CLOCK_VALID 1
#define VVAR_CPU_VALID 2
#define VVAR_MAX_CPUS 1024

// The layout is shared with pkg/sentry/time/vdso_clock.py.
struct vvar {
  // Odd while the sentry rewrites the fields below.
  volatile uint64_t seq;
  volatile uint64_t flags;
  // CLOCK_MONOTONIC = mono_base + ((tsc - tsc_base) * mult >> shift).
  volatile uint64_t tsc_base;
  volatile int64_t mono_base;
  volatile uint64_t mult;
  volatile uint64_t shift;
  // CLOCK_REALTIME and CLOCK_BOOTTIME minus CLOCK_MONOTONIC.
  volatile int64_t real_offset;
  volatile int64_t boot_offset;
  uint64_t reserved[8];
  // The sandbox CPU number + 1 of each host CPU number, 0 if none.
  volatile uint16_t cpu_of_host[VVAR_MAX_CPUS];
};

struct timespec_ {
  int64_t tv_sec;
  int64_t tv_nsec;
};

struct timeval_ {
  int64_t tv_sec;
  int64_t tv_usec;
};

// The vvar page lies just below this image's ELF header (__ehdr_start,
// which the linker defines), found relative to the instruction pointer. The
// address is computed in assembly: to the compiler, going below the start of
// an object is out of bounds.
static inline const struct vvar* vvar(void) {
  uintptr_t ehdr;
  __asm__("lea __ehdr_start(%%rip), %0" : "=r"(ehdr));
  return (const struct vvar*)(ehdr - 4096);
}

#define barrier() __asm__ __volatile__("" ::: "memory")

static inline long syscall2(long nr, long a, long b) {
  long ret;
  __asm__ __volatile__("syscall"
                       : "=a"(ret)
                       : "a"(nr), "D"(a), "S"(b)
                       : "rcx", "r11", "memory");
  return ret;
}

static inline long syscall3(long nr, long a, long b, long c) {
  long ret;
  __asm__ __volatile__("syscall"
                       : "=a"(ret)
                       : "a"(nr), "D"(a), "S"(b), "d"(c)
                       : "rcx", "r11", "memory");
  return ret;
}

static inline uint64_t rdtsc_ordered(void) {
  uint32_t lo, hi;
  // LFENCE keeps the read from being taken before earlier loads.
  __asm__ __volatile__("lfence; rdtsc" : "=a"(lo), "=d"(hi)::"memory");
  return (uint64_t)hi << 32 | lo;
}

// monotonic_ns reads CLOCK_MONOTONIC and the offset of clock (0 for
// CLOCK_MONOTONIC itself); returns 0 if the page cannot answer.
static int monotonic_ns(int clock, int64_t* out) {
  const struct vvar* v = vvar();
  uint64_t seq;
  int64_t ns;
  do {
    seq = v->seq;
    barrier();
    if (seq & 1) continue;
    if (!(v->flags & VVAR_CLOCK_VALID)) return 0;
    const uint64_t delta = rdtsc_ordered() - v->tsc_base;
    ns = v->mono_base +
         (int64_t)(((unsigned __int128)delta * v->mult) >> v->shift);
    if (clock == CLOCK_REALTIME) ns += v->real_offset;
    if (clock == CLOCK_BOOTTIME) ns += v->boot_offset;
    barrier();
  } while ((seq & 1) || v->seq != seq);
  *out = ns;
  return 1;
}

static int base_clock(int clock) {
  switch (clock) {
    case CLOCK_REALTIME:
    case CLOCK_REALTIME_COARSE:
      return CLOCK_REALTIME;
    case CLOCK_MONOTONIC:
    case CLOCK_MONOTONIC_COARSE:
      return CLOCK_MONOTONIC;
    case CLOCK_BOOTTIME:
      return CLOCK_BOOTTIME;
    default:
      return -1;
  }
}

int __vdso_clock_gettime(int clock, struct timespec_* ts) {
  const int base = base_clock(clock);
  int64_t ns;
  if (base < 0 || !monotonic_ns(base, &ns)) {
    return (int)syscall2(SYS_clock_gettime, clock, (long)ts);
  }
  ts->tv_sec = ns / 1000000000;
  ts->tv_nsec = ns % 1000000000;
  return 0;
}

int __vdso_gettimeofday(struct timeval_* tv, void* tz) {
  int64_t ns;
  if (tz != 0 || !monotonic_ns(CLOCK_REALTIME, &ns)) {
    return (int)syscall2(SYS_gettimeofday, (long)tv, (long)tz);
  }
  if (tv != 0) {
    tv->tv_sec = ns / 1000000000;
    tv->tv_usec = ns % 1000000000 / 1000;
  }
  return 0;
}

int64_t __vdso_time(int64_t* t) {
  int64_t ns;
  if (!monotonic_ns(CLOCK_REALTIME, &ns)) {
    return syscall2(SYS_time, (long)t, 0);
  }
  const int64_t secs = ns / 1000000000;
  if (t != 0) *t = secs;
  return secs;
}

// Unlike the system call, which keeps the answer within the task's CPU
// affinity mask, this reports the sandbox CPU of the host CPU the thread is
// on.
int __vdso_getcpu(unsigned* cpu, unsigned* node, void* cache) {
  const struct vvar* v = vvar();
  if (v->flags & VVAR_CPU_VALID) {
    uint32_t lo, hi, aux;
    __asm__ __volatile__("rdtscp" : "=a"(lo), "=d"(hi), "=c"(aux));
    const uint32_t host = aux & 0xfff;
    const unsigned sandbox = host < VVAR_MAX_CPUS ? v->cpu_of_host[host] : 0;
    if (sandbox != 0) {
      if (cpu != 0) *cpu = sandbox - 1;
      if (node != 0) *node = 0;
      return 0;
    }
  }
  return (int)syscall3(SYS_getcpu, (long)cpu, (long)node, (long)cache);
}

int clock_gettime(int, struct timespec_*)
    __attribute__((weak, alias("__vdso_clock_gettime")));
int gettimeofday(struct timeval_*, void*)
    __attribute__((weak, alias("__vdso_gettimeofday")));
int64_t time(int64_t*) __attribute__((weak, alias("__vdso_time")));
int getcpu(unsigned*, unsigned*, void*)
    __attribute__((weak, alias("__vdso_getcpu")));
