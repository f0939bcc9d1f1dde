// syscall_fuzz: random system calls with bad arguments, for fuzz_test.py.
//
// usage: syscall_fuzz SECONDS [SEED] [CALLS_PER_CHILD]
//
// The parent forks children one after another; each makes CALLS_PER_CHILD
// system calls with random numbers and arguments (NULL, kernel and unmapped
// addresses, pointers into a buffer of random words, page-crossing pointers,
// huge lengths, real descriptors) and is killed if it blocks for a second.
// Calls that would only end or stop the fuzzer (exit, kill, pause, fork...)
// are skipped. The sentry must survive all of it: the test reads its debug
// log for tracebacks. Environment: FUZZ_THREADS=1 adds a second thread to
// each child; FUZZ_SET=n,n,... limits the calls to those numbers.
//
// Natively these calls would change the host as root does (it chowned /,
// emptied the host name): the program refuses to run unless it is pid 1,
// the init of a sandbox.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static __thread uint64_t rng;

static uint64_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

// skip reports calls that would end, stop or multiply the fuzzer itself, or
// that change limits which then kill it (RLIMIT_CPU, RLIMIT_FSIZE).
static int skip(long nr) {
  switch (nr) {
    case SYS_exit: case SYS_exit_group: case SYS_kill: case SYS_tkill:
    case SYS_tgkill: case SYS_rt_sigqueueinfo: case SYS_rt_tgsigqueueinfo:
    case SYS_pause: case SYS_rt_sigsuspend: case SYS_vfork: case SYS_fork:
    case SYS_clone: case SYS_clone3: case SYS_execve: case SYS_execveat:
    case SYS_reboot: case 424 /* pidfd_send_signal */:
    case SYS_setrlimit: case SYS_prlimit64:
      return 1;
  }
  return 0;
}

// State shared with the parent, which reports what a stuck child was doing
// and stops trying calls that are not implemented.
struct shared {
  long nr;
  uint64_t a[6];
  uint64_t n;
  unsigned char nosys[512];
};
static volatile struct shared *shared;

static char *buf;        // 64 KiB of random bytes or words
static char *guard_end;  // the last byte before a PROT_NONE page
static char paths[][24] = {"/tmp/f", "/tmp", "/proc/self/mem", "/dev/null",
                           "/", "..", "/proc/self/fd/0", "/tmp/f/x"};
static int set[64], nset;
static int calls_per_thread;

static uint64_t arg(void) {
  switch (rnd() % 20) {
    case 0: return 0;
    case 1: return rnd() % 16;
    case 2: return (uint64_t)-1;
    case 3: return rnd();
    case 4: return (uint64_t)buf + (rnd() % 65536);
    case 5: return (uint64_t)buf;
    case 6: return (uint64_t)guard_end - (rnd() % 16);
    case 7: return 0xffffffff80000000ull + (rnd() % 4096);
    case 8: return 1ull << (rnd() % 64);
    case 9: return 0x7fffffff;
    case 10: return (uint64_t)paths[rnd() % 8];
    case 11: return rnd() % 64;  // a descriptor
    case 12: return (uint64_t) - (int64_t)(rnd() % 4096);
    case 13: return 0x7ffffffff000ull;
    case 14: return (uint64_t)buf + 65536 - (rnd() % 8);
    case 15: return rnd() & 0xffffffff;
    case 16: return (1ull << 47) - (rnd() % 8192);
    case 17: return 4096;
    case 18: return (uint64_t)&buf[8];
    default: return rnd() % 256;
  }
}

static void run_calls(int calls) {
  for (int i = 0; i < calls; i++) {
    long nr = nset ? set[rnd() % nset] : (long)(rnd() % 460);
    if (skip(nr) || shared->nosys[nr]) continue;
    uint64_t a[6];
    for (int j = 0; j < 6; j++) a[j] = arg();
    shared->nr = nr;
    memcpy((void *)shared->a, a, sizeof(a));
    shared->n++;
    long r = syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    if (r == -1 && errno == ENOSYS) shared->nosys[nr] = 1;
  }
}

static void *second_thread(void *seed) {
  rng = (uint64_t)(uintptr_t)seed;
  run_calls(calls_per_thread);
  return NULL;
}

static void on_alarm(int sig) { (void)sig; }

static void child(uint64_t seed, int calls) {
  rng = seed;
  // A few real objects for the descriptor arguments.
  open("/tmp", O_RDONLY | O_DIRECTORY);
  open("/tmp/f", O_RDWR | O_CREAT, 0644);
  int p[2];
  pipe(p);
  socketpair(AF_UNIX, SOCK_STREAM, 0, p);
  socket(AF_INET, SOCK_DGRAM, 0);
  eventfd(0, 0);
  open("/dev/null", O_RDWR);

  buf = malloc(65536 + 16);
  for (int i = 0; i < 65536; i++) buf[i] = rnd();
  if (getenv("FUZZ_STRUCT")) {
    // Words that look like fields: pointers back into buf, small counts.
    uint64_t *w = (uint64_t *)buf;
    for (int i = 0; i < 65536 / 8; i++) {
      switch (rnd() % 4) {
        case 0: w[i] = (uint64_t)buf + (rnd() % 65536); break;
        case 1: w[i] = rnd() % 64; break;
        case 2: w[i] = (rnd() % 64) | ((rnd() % 64) << 32); break;
        default: w[i] = arg(); break;
      }
    }
  }
  char *pg = mmap(NULL, 8192, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  mprotect(pg + 4096, 4096, PROT_NONE);
  guard_end = pg + 4095;

  // Blocking calls without a timeout are interrupted by a timer.
  struct sigaction sa = {0};
  sa.sa_handler = on_alarm;
  sigaction(SIGALRM, &sa, NULL);
  struct itimerval it = {{0, 50000}, {0, 50000}};
  setitimer(ITIMER_REAL, &it, NULL);

  if (getenv("FUZZ_THREADS")) {
    pthread_t th;
    calls_per_thread = calls;
    pthread_create(&th, NULL, second_thread, (void *)(uintptr_t)(seed * 7 + 1));
  }
  run_calls(calls);
  _exit(0);
}

int main(int argc, char **argv) {
  if (getpid() != 1) {
    fprintf(stderr, "syscall_fuzz: not in a sandbox (pid %d); refusing\n",
            getpid());
    return 100;
  }
  int secs = argc > 1 ? atoi(argv[1]) : 60;
  uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 0) : (uint64_t)time(NULL);
  int calls = argc > 3 ? atoi(argv[3]) : 200;
  char *only = getenv("FUZZ_SET");
  for (char *t = only ? strtok(only, ",") : NULL; t && nset < 64;
       t = strtok(NULL, ","))
    set[nset++] = atoi(t);
  shared = mmap(NULL, sizeof(struct shared), PROT_READ | PROT_WRITE,
                MAP_SHARED | MAP_ANONYMOUS, -1, 0);

  time_t end = time(NULL) + secs;
  long children = 0, total = 0, killed = 0;
  rng = seed;
  while (time(NULL) < end) {
    uint64_t s = rnd() | 1;
    shared->n = 0;
    pid_t pid = fork();
    if (pid < 0) {
      perror("fork");
      return 2;
    }
    if (pid == 0) child(s, calls);
    children++;
    int st = 0, ms = 0;
    while (waitpid(pid, &st, WNOHANG) == 0) {
      struct timespec ts = {0, 10 * 1000 * 1000};
      nanosleep(&ts, NULL);
      if ((ms += 10) == 1000) {
        kill(pid, SIGKILL);
        killed++;
      }
      if (ms > 20000) {
        fprintf(stderr, "seed=%#lx: SIGKILL did not end the child in 19 s\n",
                (unsigned long)s);
        return 3;
      }
    }
    total += shared->n;
  }
  // Children write garbage to every descriptor: the summary goes last, on a
  // line of its own.
  fprintf(stderr, "\nsyscall_fuzz: children=%ld syscalls=%ld killed=%ld\n",
          children, total, killed);
  return 0;
}
