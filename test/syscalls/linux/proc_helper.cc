// proc_helper: a program that the process tests execute. It checks facts
// about the process it finds itself in, then does one thing, and reports
// through its exit status (the sandbox has no pipes yet to report through).
//
// What to check comes from the environment, so that it survives `#!`
// interpreter splicing, which rewrites argv:
//
//   PV_CHECK   newline-separated assertions, e.g. "argc=3", "argv[1]=x",
//              "env:FOO=bar", "noenv:FOO", "fd-open=5", "fd-closed=6",
//              "sig-dfl=10", "sig-ign=12", "sig-blocked=10",
//              "sig-pending=10", "comm=name", "execfn=/path", "secure=1",
//              "ruid=0", "euid=0", "suid=0", "rgid=0", "egid=0", "sgid=0",
//              "cap-eff=<hex>", "cap-prm=<hex>", "cap-inh=<hex>",
//              "pdeathsig=10", "dumpable=1", "ppid=<n>", "tid-is-pid",
//              "altstack-disabled", "personality=<hex>", "nice=<n>",
//              "umask=<octal>", "nothreads" (the process has one thread).
//   PV_ACTION  what to do once every check holds:
//              "exit=N"        exit with N (the default is exit=0);
//              "pause"         sleep until killed (exit 99 after 30 s);
//              "stop"          raise(SIGSTOP), then exit 0;
//              "kill=SIG"      raise SIG;
//              "leader-exit"   the main thread exits with status 3 while a
//                              second thread exits with 5 a little later;
//              "thread-exit-group"  a second thread calls exit_group(7)
//                              while the main thread sleeps;
//              "exec-from-thread"  a second thread execs this program
//                              again with PV_CHECK=tid-is-pid,nothreads
//                              and PV_ACTION=exit=42 while the main thread
//                              sleeps;
//              "mutex=N"       N threads hammer one pthread mutex; exit 0
//                              if the count is right;
//              "spin=MS"       burn CPU until getrusage reports MS
//                              milliseconds of it, then exit 0;
//              "orphan"        start this program again with PV_ACTION set
//                              to PV_ORPHAN_ACTION (and no checks), then
//                              exit 0 at once, orphaning it.
//
// A failed check exits with 100 + its index and says why on stderr; a bad
// request exits with 90.

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

namespace {

std::vector<std::string> Split(const char* s, char sep) {
  std::vector<std::string> out;
  if (s == nullptr) return out;
  std::string cur;
  for (const char* p = s; *p; ++p) {
    if (*p == sep) {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(*p);
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

bool SigDisposition(int sig, void (**handler)(int)) {
  struct sigaction sa;
  if (sigaction(sig, nullptr, &sa) != 0) return false;
  *handler = sa.sa_handler;
  return true;
}

uint64_t Caps(int which) {
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capget, &hdr, data) != 0) return ~0ull;
  auto pick = [&](int i) -> uint64_t {
    switch (which) {
      case 0:
        return data[i].effective;
      case 1:
        return data[i].permitted;
      default:
        return data[i].inheritable;
    }
  };
  return pick(0) | (pick(1) << 32);
}

int CountThreads() {
  DIR* dir = opendir("/proc/self/task");
  int n = 0;
  if (dir != nullptr) {
    while (struct dirent* e = readdir(dir)) {
      if (e->d_name[0] != '.') n++;
    }
    closedir(dir);
    return n;
  }
  // Without /proc (the sandbox, for now), whose ids are small: count the
  // threads that answer a null signal.
  for (pid_t tid = 1; tid < 4096; tid++) {
    if (syscall(SYS_tgkill, getpid(), tid, 0) == 0) n++;
  }
  return n;
}

// Check evaluates one assertion and returns an explanation if it fails.
std::string Check(const std::string& c, int argc, char** argv) {
  const size_t eq = c.find('=');
  const std::string key = c.substr(0, eq);
  const std::string val = eq == std::string::npos ? "" : c.substr(eq + 1);
  auto num = [&]() { return strtoll(val.c_str(), nullptr, 0); };
  auto expect = [&](long long got) -> std::string {
    if (got == num()) return "";
    return "got " + std::to_string(got);
  };
  if (key == "argc") return expect(argc);
  if (key.rfind("argv[", 0) == 0) {
    const int i = atoi(key.c_str() + 5);
    if (i >= argc) return "argc is " + std::to_string(argc);
    if (val == argv[i]) return "";
    return std::string("got \"") + argv[i] + "\"";
  }
  if (key.rfind("env:", 0) == 0) {
    const char* v = getenv(key.c_str() + 4);
    if (v == nullptr) return "unset";
    return val == v ? "" : std::string("got \"") + v + "\"";
  }
  if (key.rfind("noenv:", 0) == 0) {
    return getenv(key.c_str() + 6) == nullptr ? "" : "set";
  }
  if (key == "fd-open") {
    return fcntl(num(), F_GETFD) >= 0 ? "" : "closed";
  }
  if (key == "fd-closed") {
    if (fcntl(num(), F_GETFD) >= 0) return "open";
    return errno == EBADF ? "" : "errno " + std::to_string(errno);
  }
  if (key == "sig-dfl" || key == "sig-ign") {
    void (*h)(int);
    if (!SigDisposition(num(), &h)) return "sigaction failed";
    const bool want_ign = key == "sig-ign";
    if (h == (want_ign ? SIG_IGN : SIG_DFL)) return "";
    return "handler is " + std::to_string(reinterpret_cast<uintptr_t>(h));
  }
  if (key == "sig-blocked") {
    sigset_t set;
    sigprocmask(SIG_BLOCK, nullptr, &set);
    return sigismember(&set, num()) ? "" : "not blocked";
  }
  if (key == "sig-pending") {
    sigset_t set;
    sigpending(&set);
    return sigismember(&set, num()) ? "" : "not pending";
  }
  if (key == "comm") {
    char name[17] = {};
    prctl(PR_GET_NAME, name);
    return val == name ? "" : std::string("got \"") + name + "\"";
  }
  if (key == "execfn") {
    const char* fn = reinterpret_cast<const char*>(getauxval(AT_EXECFN));
    if (fn == nullptr) return "no AT_EXECFN";
    return val == fn ? "" : std::string("got \"") + fn + "\"";
  }
  if (key == "secure") return expect(getauxval(AT_SECURE));
  uid_t r, e, s;
  gid_t gr, ge, gs;
  getresuid(&r, &e, &s);
  getresgid(&gr, &ge, &gs);
  if (key == "ruid") return expect(r);
  if (key == "euid") return expect(e);
  if (key == "suid") return expect(s);
  if (key == "rgid") return expect(gr);
  if (key == "egid") return expect(ge);
  if (key == "sgid") return expect(gs);
  if (key == "cap-eff") return expect(Caps(0));
  if (key == "cap-prm") return expect(Caps(1));
  if (key == "cap-inh") return expect(Caps(2));
  if (key == "pdeathsig") {
    int sig = -1;
    prctl(PR_GET_PDEATHSIG, &sig);
    return expect(sig);
  }
  if (key == "dumpable") return expect(prctl(PR_GET_DUMPABLE));
  if (key == "ppid") return expect(getppid());
  if (key == "tid-is-pid") {
    return syscall(SYS_gettid) == getpid() ? "" : "tid differs";
  }
  if (key == "altstack-disabled") {
    stack_t ss;
    sigaltstack(nullptr, &ss);
    return ss.ss_flags & SS_DISABLE ? "" : "enabled";
  }
  if (key == "personality") return expect(personality(0xffffffff));
  if (key == "nice") {
    errno = 0;
    return expect(getpriority(PRIO_PROCESS, 0));
  }
  if (key == "umask") {
    const mode_t m = umask(0);
    umask(m);
    return expect(m);
  }
  if (key == "nothreads") {
    const int n = CountThreads();
    return n == 1 ? "" : std::to_string(n) + " threads";
  }
  return "unknown check";
}

void SleepMillis(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
long g_count = 0;
constexpr int kIterations = 2000;

void* Hammer(void*) {
  for (int i = 0; i < kIterations; i++) {
    pthread_mutex_lock(&g_mu);
    g_count++;
    pthread_mutex_unlock(&g_mu);
  }
  return nullptr;
}

char** g_argv;

void* ExecAgain(void*) {
  SleepMillis(50);
  char check[] = "PV_CHECK=tid-is-pid\nnothreads";
  char action[] = "PV_ACTION=exit=42";
  char* envp[] = {check, action, nullptr};
  execve("/proc/self/exe", g_argv, envp);
  // No /proc in the sandbox yet: use the path we were started with.
  execve(g_argv[0], g_argv, envp);
  _exit(91);
}

void* ExitLater(void*) {
  SleepMillis(100);
  syscall(SYS_exit, 5);
  return nullptr;
}

void* ExitGroupSoon(void*) {
  SleepMillis(20);
  syscall(SYS_exit_group, 7);
  return nullptr;
}

// Spin burns CPU until getrusage reports ms milliseconds of it.
void Spin(long ms) {
  volatile unsigned long x = 0;
  for (;;) {
    for (int i = 0; i < 100000; i++) x += i;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    const long used = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
                      (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
    if (used >= ms) return;
  }
}

int Orphan() {
  const char* next = getenv("PV_ORPHAN_ACTION");
  std::string action = std::string("PV_ACTION=") + (next ? next : "exit=0");
  char* envp[] = {action.data(), nullptr};
  const pid_t pid = vfork();
  if (pid == 0) {
    execve(g_argv[0], g_argv, envp);
    _exit(127);
  }
  return pid > 0 ? 0 : 93;
}

int Act(const std::string& action) {
  const size_t eq = action.find('=');
  const std::string key = action.substr(0, eq);
  const int arg = eq == std::string::npos ? 0 : atoi(action.c_str() + eq + 1);
  pthread_t th;
  if (key == "exit") return arg;
  if (key == "pause") {
    SleepMillis(30000);
    return 99;
  }
  if (key == "stop") {
    raise(SIGSTOP);
    return 0;
  }
  if (key == "kill") {
    signal(arg, SIG_DFL);
    raise(arg);
    return 98;
  }
  if (key == "leader-exit") {
    pthread_create(&th, nullptr, ExitLater, nullptr);
    syscall(SYS_exit, 3);
  }
  if (key == "thread-exit-group") {
    pthread_create(&th, nullptr, ExitGroupSoon, nullptr);
    SleepMillis(30000);
    return 99;
  }
  if (key == "exec-from-thread") {
    pthread_create(&th, nullptr, ExecAgain, nullptr);
    SleepMillis(30000);
    return 99;
  }
  if (key == "spin") {
    Spin(arg);
    return 0;
  }
  if (key == "orphan") return Orphan();
  if (key == "mutex") {
    std::vector<pthread_t> threads(arg);
    for (auto& t : threads) {
      if (pthread_create(&t, nullptr, Hammer, nullptr) != 0) return 92;
    }
    for (auto& t : threads) pthread_join(t, nullptr);
    return g_count == static_cast<long>(arg) * kIterations ? 0 : 1;
  }
  return 90;
}

}  // namespace

int main(int argc, char** argv) {
  g_argv = argv;
  const std::vector<std::string> checks = Split(getenv("PV_CHECK"), '\n');
  for (size_t i = 0; i < checks.size(); i++) {
    const std::string why = Check(checks[i], argc, argv);
    if (!why.empty()) {
      fprintf(stderr, "proc_helper: check \"%s\" failed: %s\n",
              checks[i].c_str(), why.c_str());
      return 100 + static_cast<int>(i);
    }
  }
  const char* action = getenv("PV_ACTION");
  return Act(action != nullptr ? action : "exit=0");
}
