// escape: tries to reach outside its container, for escape_test.py.
//
// usage: escape CANARY_PATH TCP_PORT HOST_PID
//
// Each attempt prints one line, "contained NAME: ..." when the attempt
// failed as it must, or "ESCAPED NAME: ..." when it reached the host, or
// "tried NAME: ..." when only the test can tell; the exit status is the
// number of escapes. The attempts use raw system calls,
// so that what is tried does not depend on what libc wraps.

#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <string>

namespace {

int escapes = 0;

void Report(bool escaped, const char* name, const std::string& detail) {
  printf("%s %s: %s\n", escaped ? "ESCAPED" : "contained", name,
         detail.c_str());
  fflush(stdout);
  if (escaped) ++escapes;
}

// Info prints an attempt whose success would not by itself be an escape
// (the sentry may implement the call inside the sandbox).
void Info(const char* name, const std::string& detail) {
  printf("tried %s: %s\n", name, detail.c_str());
  fflush(stdout);
}

std::string Result(long ret) {
  if (ret < 0) return std::string("failed: ") + strerror(errno);
  return "returned " + std::to_string(ret);
}

// ReadsCanary reports whether fd reads the canary's contents.
bool ReadsCanary(long fd, const char* expected) {
  if (fd < 0) return false;
  char buf[256] = {};
  long n = syscall(SYS_read, fd, buf, sizeof(buf) - 1);
  syscall(SYS_close, fd);
  return n > 0 && strstr(buf, expected) != nullptr;
}

// The canary's path, where a 32-bit system call can name it.
char low_path[4096];

long Int80(long nr, long a, long b, long c) {
  long ret;
  asm volatile("int $0x80"
               : "=a"(ret)
               : "a"(nr), "b"(a), "c"(b), "d"(c)
               : "memory");
  return ret;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s CANARY_PATH TCP_PORT HOST_PID\n", argv[0]);
    return 100;
  }
  const char* canary = argv[1];
  const int port = atoi(argv[2]);
  const pid_t host_pid = atoi(argv[3]);
  const char* secret = "pyvisor-canary";

  // Outside a sandbox these attempts would succeed, on the host: refuse.
  // In the sandbox the program is init of the container's PID namespace.
  if (getpid() != 1 || getppid() != 0) {
    fprintf(stderr, "escape: not in a sandbox (pid %d); refusing to run\n",
            getpid());
    return 100;
  }

  // A file of the container's own root opens: the failures below are the
  // sandbox's doing, not a missing open(2).
  long fd = syscall(SYS_open, "/inside", O_RDONLY);
  Info("open-inside", ReadsCanary(fd, "pyvisor-inside") ? "read it" : Result(fd));

  // The host file by its host path, by openat, and through symlinks planted
  // in the root that point outside it.
  fd = syscall(SYS_open, canary, O_RDONLY);
  Report(ReadsCanary(fd, secret), "open-host-path", Result(fd));
  fd = syscall(SYS_openat, AT_FDCWD, canary, O_RDONLY);
  Report(ReadsCanary(fd, secret), "openat-host-path", Result(fd));
  fd = syscall(SYS_open, "/abs-link", O_RDONLY);
  Report(ReadsCanary(fd, secret), "open-absolute-symlink", Result(fd));
  fd = syscall(SYS_open, "/rel-link", O_RDONLY);
  Report(ReadsCanary(fd, secret), "open-relative-symlink", Result(fd));

  // The 32-bit system call entry and x32 numbers: the sandbox must not let
  // them through to the host either.
  strncpy(low_path, canary, sizeof(low_path) - 1);
  fd = Int80(5 /* i386 open */, reinterpret_cast<long>(low_path), O_RDONLY, 0);
  Report(fd >= 0 && ReadsCanary(fd, secret), "int80-open",
         "returned " + std::to_string(fd));
  fd = syscall(0x40000000 | SYS_open, canary, O_RDONLY);
  Report(ReadsCanary(fd, secret), "x32-open", Result(fd));

  // The host network: a listener on the host's loopback.
  long s = syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
  bool connected = false;
  if (s >= 0) {
    struct sockaddr_in addr = {};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected = syscall(SYS_connect, s, &addr, sizeof(addr)) == 0;
  }
  Report(connected, "connect-host-loopback", Result(s));

  // Host processes: the test process by its host pid, and pid 1 (which is
  // this program in the sandbox, and the sentry in the sandbox's host PID
  // namespace).
  long r = syscall(SYS_kill, host_pid, SIGUSR1);
  Info("kill-host-pid", Result(r) + " (the test checks delivery)");
  r = syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, 1, 0, 0);
  Report(r == 0, "ptrace-attach-1", Result(r));
  r = syscall(SYS_ptrace, 16, getppid(), 0, 0);
  Report(r == 0 && getppid() != 0, "ptrace-attach-parent", Result(r));
  r = syscall(SYS_ptrace, 16, host_pid, 0, 0);
  Report(r == 0, "ptrace-attach-host-pid", Result(r));
  // Memory of a host process, by its host pid (pid 1 in here is this
  // program itself, whose memory it may read).
  char buf[16];
  struct iovec local = {buf, sizeof(buf)};
  struct iovec remote = {reinterpret_cast<void*>(0x400000), sizeof(buf)};
  r = syscall(SYS_process_vm_readv, host_pid, &local, 1, &remote, 1, 0);
  Report(r > 0, "process_vm_readv-host-pid", Result(r));

  // Changing the host's view: mounts, namespaces, running host programs.
  r = syscall(SYS_mount, "none", "/", "tmpfs", 0, nullptr);
  Info("mount", Result(r));
  r = syscall(SYS_unshare, CLONE_NEWNS | CLONE_NEWUSER);
  Info("unshare", Result(r));
  char* const args[] = {const_cast<char*>("/bin/true"), nullptr};
  r = syscall(SYS_execve, "/bin/true", args, nullptr);
  Info("execve", Result(r));

  printf("pid=%d ppid=%d\n", getpid(), getppid());
  return escapes;
}
