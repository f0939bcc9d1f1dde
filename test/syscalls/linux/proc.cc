// procfs: /proc/self, /proc/[pid] files, fd magic links, and the system-wide
// files and sysctls programs read.

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/file_descriptor.h"
#include "test/util/fs_util.h"
#include "test/util/multiprocess_util.h"
#include "test/util/test_util.h"

extern char** environ;

namespace pyvisor {
namespace testing {
namespace {

using ::testing::Contains;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// ReadAll reads a file whose stat size is 0 (as /proc files are) to EOF in
// small reads, as programs do.
std::string ReadAll(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) {
    ADD_FAILURE() << "open " << path << ": " << strerror(errno);
    return "";
  }
  std::string out;
  char buf[100];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, n);
  EXPECT_EQ(n, 0) << path << ": " << strerror(errno);
  close(fd);
  return out;
}

std::string Readlink(const std::string& path) {
  char buf[PATH_MAX];
  ssize_t n = readlink(path.c_str(), buf, sizeof(buf));
  if (n < 0) {
    ADD_FAILURE() << "readlink " << path << ": " << strerror(errno);
    return "";
  }
  return std::string(buf, n);
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

// StatusField returns the value of "Key:\t..." in a status file.
std::string StatusField(const std::string& status, const std::string& key) {
  for (const std::string& line : Split(status, '\n')) {
    if (line.rfind(key + ":", 0) == 0) {
      std::string v = line.substr(key.size() + 1);
      size_t start = v.find_first_not_of(" \t");
      return start == std::string::npos ? "" : v.substr(start);
    }
  }
  return "<missing>";
}

// StatFields returns the fields of /proc/.../stat after the comm, with the
// comm as field 1 (fields are numbered from 0 like the man page from 1).
std::vector<std::string> StatFields(const std::string& stat) {
  std::vector<std::string> out;
  size_t open = stat.find('(');
  size_t close = stat.rfind(')');
  if (open == std::string::npos || close == std::string::npos) return out;
  out.push_back(stat.substr(0, open - 1));
  out.push_back(stat.substr(open + 1, close - open - 1));
  std::istringstream rest(stat.substr(close + 2));
  std::string f;
  while (rest >> f) out.push_back(f);
  return out;
}

std::set<std::string> DirEntries(const std::string& path) {
  std::set<std::string> out;
  DIR* d = opendir(path.c_str());
  if (d == nullptr) {
    ADD_FAILURE() << "opendir " << path << ": " << strerror(errno);
    return out;
  }
  while (struct dirent* e = readdir(d)) out.insert(e->d_name);
  closedir(d);
  return out;
}

bool IsUint(const std::string& s) {
  std::string t = s;
  while (!t.empty() && (t.back() == '\n')) t.pop_back();
  return !t.empty() && t.find_first_not_of("0123456789") == std::string::npos;
}

TEST(ProcTest, SelfAndThreadSelf) {
  EXPECT_EQ(Readlink("/proc/self"), std::to_string(getpid()));
  EXPECT_EQ(Readlink("/proc/thread-self"),
            std::to_string(getpid()) + "/task/" +
                std::to_string(syscall(SYS_gettid)));
  struct stat a, b;
  ASSERT_THAT(stat("/proc/self", &a), SyscallSucceeds());
  ASSERT_THAT(stat(("/proc/" + std::to_string(getpid())).c_str(), &b),
              SyscallSucceeds());
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_TRUE(S_ISDIR(a.st_mode));
  EXPECT_EQ(a.st_uid, geteuid());
}

TEST(ProcTest, RootListsProcessesAndFiles) {
  std::set<std::string> names = DirEntries("/proc");
  EXPECT_THAT(names, Contains(std::to_string(getpid())));
  for (const char* n : {"self", "thread-self", "cpuinfo", "meminfo", "stat",
                        "uptime", "loadavg", "version", "filesystems",
                        "mounts", "sys"}) {
    EXPECT_THAT(names, Contains(n));
  }
  EXPECT_THAT(access("/proc/0", F_OK), SyscallFailsWithErrno(ENOENT));
  EXPECT_THAT(access("/proc/nonexistent", F_OK),
              SyscallFailsWithErrno(ENOENT));
}

TEST(ProcTest, Stat) {
  std::vector<std::string> f = StatFields(ReadAll("/proc/self/stat"));
  ASSERT_GE(f.size(), 52u);
  EXPECT_EQ(f[0], std::to_string(getpid()));
  char comm[16] = {};
  ASSERT_THAT(prctl(PR_GET_NAME, comm), SyscallSucceeds());
  EXPECT_EQ(f[1], comm);
  EXPECT_EQ(f[2], "R");  // Reading it, the process runs.
  EXPECT_EQ(f[3], std::to_string(getppid()));
  EXPECT_EQ(f[4], std::to_string(getpgrp()));
  EXPECT_EQ(f[5], std::to_string(getsid(0)));
  EXPECT_EQ(f[19], "1");  // num_threads
  EXPECT_EQ(f[37], "17");  // exit_signal: SIGCHLD
  // vsize (bytes) is at least this mapping.
  void* p = mmap(nullptr, 1 << 20, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1,
                 0);
  ASSERT_NE(p, MAP_FAILED);
  f = StatFields(ReadAll("/proc/self/stat"));
  EXPECT_GE(strtoull(f[22].c_str(), nullptr, 10), 1u << 20);
  munmap(p, 1 << 20);
}

TEST(ProcTest, Status) {
  std::string s = ReadAll("/proc/self/status");
  char comm[16] = {};
  ASSERT_THAT(prctl(PR_GET_NAME, comm), SyscallSucceeds());
  EXPECT_EQ(StatusField(s, "Name"), comm);
  EXPECT_EQ(StatusField(s, "Pid"), std::to_string(getpid()));
  EXPECT_EQ(StatusField(s, "Tgid"), std::to_string(getpid()));
  EXPECT_EQ(StatusField(s, "PPid"), std::to_string(getppid()));
  EXPECT_EQ(StatusField(s, "Threads"), "1");
  EXPECT_THAT(StatusField(s, "State"), StartsWith("R"));
  uid_t r, e, sv;
  getresuid(&r, &e, &sv);
  EXPECT_THAT(StatusField(s, "Uid"),
              StartsWith(std::to_string(r) + "\t" + std::to_string(e) + "\t" +
                         std::to_string(sv) + "\t"));
  EXPECT_THAT(StatusField(s, "VmRSS"), EndsWith(" kB"));
  EXPECT_NE(StatusField(s, "VmSize"), "<missing>");
  // The tab after the colon is what parsers such as procps rely on.
  EXPECT_THAT(s, HasSubstr("\nVmSize:\t"));
  EXPECT_NE(StatusField(s, "SigBlk"), "<missing>");
  EXPECT_NE(StatusField(s, "CapEff"), "<missing>");
  EXPECT_NE(StatusField(s, "Cpus_allowed_list"), "<missing>");
  // A blocked signal shows in SigBlk.
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  ASSERT_THAT(sigprocmask(SIG_BLOCK, &set, &old), SyscallSucceeds());
  s = ReadAll("/proc/self/task/" + std::to_string(syscall(SYS_gettid)) +
              "/status");
  unsigned long long blk =
      strtoull(StatusField(s, "SigBlk").c_str(), nullptr, 16);
  EXPECT_TRUE(blk & (1ull << (SIGUSR1 - 1)));
  sigprocmask(SIG_SETMASK, &old, nullptr);
}

TEST(ProcTest, Statm) {
  std::vector<std::string> f;
  std::istringstream in(ReadAll("/proc/self/statm"));
  std::string x;
  while (in >> x) f.push_back(x);
  ASSERT_EQ(f.size(), 7u);
  EXPECT_GT(strtoull(f[0].c_str(), nullptr, 10), 0u);
  EXPECT_GT(strtoull(f[1].c_str(), nullptr, 10), 0u);
  EXPECT_LE(strtoull(f[1].c_str(), nullptr, 10),
            strtoull(f[0].c_str(), nullptr, 10));
}

TEST(ProcTest, CmdlineAndEnviron) {
  std::string cmdline = ReadAll("/proc/self/cmdline");
  ASSERT_FALSE(cmdline.empty());
  EXPECT_EQ(cmdline.back(), '\0');
  EXPECT_EQ(std::string(cmdline.c_str()), program_invocation_name);
  std::string env = ReadAll("/proc/self/environ");
  if (environ[0] != nullptr) {
    EXPECT_THAT(env, HasSubstr(std::string(environ[0]) + '\0'));
  }
}

TEST(ProcTest, Maps) {
  const size_t len = 3 * 4096;
  char* p = static_cast<char*>(mmap(nullptr, len, PROT_READ,
                                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(p, MAP_FAILED);
  char want[64];
  snprintf(want, sizeof(want), "%08lx-%08lx r--p 00000000 00:00 0",
           reinterpret_cast<unsigned long>(p),
           reinterpret_cast<unsigned long>(p + len));
  std::string maps = ReadAll("/proc/self/maps");
  EXPECT_THAT(maps, HasSubstr(std::string(want) + " "));
  EXPECT_THAT(maps, HasSubstr("[stack]\n"));
  std::string smaps = ReadAll("/proc/self/smaps");
  EXPECT_THAT(smaps, HasSubstr(want));
  EXPECT_THAT(smaps, HasSubstr("\nRss:"));
  munmap(p, len);
  // The executable's own segments carry its path.
  EXPECT_THAT(maps, HasSubstr(Readlink("/proc/self/exe") + "\n"));
}

TEST(ProcTest, ExeCwdRoot) {
  struct stat a, b;
  ASSERT_THAT(stat("/proc/self/exe", &a), SyscallSucceeds());
  ASSERT_THAT(stat(program_invocation_name, &b), SyscallSucceeds());
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(a.st_size, b.st_size);
  struct stat l;
  ASSERT_THAT(lstat("/proc/self/exe", &l), SyscallSucceeds());
  EXPECT_TRUE(S_ISLNK(l.st_mode));

  TempDir dir;
  char old[PATH_MAX];
  ASSERT_NE(getcwd(old, sizeof(old)), nullptr);
  ASSERT_THAT(chdir(dir.path().c_str()), SyscallSucceeds());
  EXPECT_EQ(Readlink("/proc/self/cwd"), dir.path());
  // Following cwd leads to the directory itself.
  ASSERT_TRUE(WriteFile(dir.Join("f"), "x"));
  EXPECT_EQ(ReadFile("/proc/self/cwd/f"), "x");
  ASSERT_THAT(chdir(old), SyscallSucceeds());
  EXPECT_EQ(Readlink("/proc/self/root"), "/");
}

TEST(ProcTest, FdLinks) {
  TempDir dir;
  std::string path = dir.Join("file");
  ASSERT_TRUE(WriteFile(path, "hello"));
  FileDescriptor fd(open(path.c_str(), O_RDONLY));
  ASSERT_THAT(fd.get(), SyscallSucceeds());
  std::string link = "/proc/self/fd/" + std::to_string(fd.get());
  EXPECT_EQ(Readlink(link), path);
  struct stat l;
  ASSERT_THAT(lstat(link.c_str(), &l), SyscallSucceeds());
  EXPECT_EQ(l.st_mode & 07777, 0500);  // lr-x------ for a read-only fd
  EXPECT_THAT(DirEntries("/proc/self/fd"), Contains(std::to_string(fd.get())));

  // Reopening a deleted file through its link opens that file.
  ASSERT_THAT(unlink(path.c_str()), SyscallSucceeds());
  EXPECT_EQ(Readlink(link), path + " (deleted)");
  FileDescriptor again(open(link.c_str(), O_RDONLY));
  ASSERT_THAT(again.get(), SyscallSucceeds());
  char buf[8] = {};
  EXPECT_THAT(read(again.get(), buf, sizeof(buf)), SyscallSucceedsWithValue(5));
  EXPECT_STREQ(buf, "hello");
  // With its own offset.
  EXPECT_THAT(lseek(fd.get(), 0, SEEK_CUR), SyscallSucceedsWithValue(0));

  EXPECT_THAT(open("/proc/self/fd/999999", O_RDONLY),
              SyscallFailsWithErrno(ENOENT));
  EXPECT_THAT(open("/proc/self/fd/01", O_RDONLY),
              SyscallFailsWithErrno(ENOENT));
}

TEST(ProcTest, FdReopenPipe) {
  int p[2];
  ASSERT_THAT(pipe(p), SyscallSucceeds());
  FileDescriptor r(p[0]), w(p[1]);
  EXPECT_THAT(Readlink("/proc/self/fd/" + std::to_string(r.get())),
              StartsWith("pipe:["));
  FileDescriptor w2(
      open(("/proc/self/fd/" + std::to_string(r.get())).c_str(), O_WRONLY));
  ASSERT_THAT(w2.get(), SyscallSucceeds());
  ASSERT_THAT(write(w2.get(), "ab", 2), SyscallSucceedsWithValue(2));
  char buf[2];
  EXPECT_THAT(read(r.get(), buf, 2), SyscallSucceedsWithValue(2));
  EXPECT_EQ(std::string(buf, 2), "ab");
}

TEST(ProcTest, FdReopenMemfd) {
  FileDescriptor fd(syscall(SYS_memfd_create, "procmem", 0));
  ASSERT_THAT(fd.get(), SyscallSucceeds());
  ASSERT_THAT(write(fd.get(), "xyz", 3), SyscallSucceedsWithValue(3));
  std::string link = "/proc/self/fd/" + std::to_string(fd.get());
  EXPECT_EQ(Readlink(link), "/memfd:procmem (deleted)");
  FileDescriptor again(open(link.c_str(), O_RDONLY));
  ASSERT_THAT(again.get(), SyscallSucceeds());
  char buf[3];
  EXPECT_THAT(read(again.get(), buf, 3), SyscallSucceedsWithValue(3));
  EXPECT_EQ(std::string(buf, 3), "xyz");
}

TEST(ProcTest, FdReopenEventfdFails) {
  FileDescriptor fd(syscall(SYS_eventfd2, 0, 0));
  ASSERT_THAT(fd.get(), SyscallSucceeds());
  std::string link = "/proc/self/fd/" + std::to_string(fd.get());
  EXPECT_EQ(Readlink(link), "anon_inode:[eventfd]");
  EXPECT_THAT(open(link.c_str(), O_RDWR), SyscallFailsWithErrno(ENXIO));
}

TEST(ProcTest, Fdinfo) {
  TempDir dir;
  std::string path = dir.Join("file");
  ASSERT_TRUE(WriteFile(path, "0123456789"));
  FileDescriptor fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_THAT(fd.get(), SyscallSucceeds());
  ASSERT_THAT(lseek(fd.get(), 4, SEEK_SET), SyscallSucceeds());
  std::string info =
      ReadAll("/proc/self/fdinfo/" + std::to_string(fd.get()));
  EXPECT_EQ(StatusField(info, "pos"), "4");
  unsigned long flags = strtoul(StatusField(info, "flags").c_str(), nullptr, 8);
  EXPECT_TRUE(flags & O_CLOEXEC);
  EXPECT_EQ(flags & O_ACCMODE, O_RDONLY);
  struct stat st;
  ASSERT_THAT(fstat(fd.get(), &st), SyscallSucceeds());
  EXPECT_EQ(StatusField(info, "ino"), std::to_string(st.st_ino));
}

TEST(ProcTest, Permissions) {
  struct stat st;
  ASSERT_THAT(stat("/proc/self/environ", &st), SyscallSucceeds());
  EXPECT_EQ(st.st_mode & 07777, 0400);
  EXPECT_EQ(st.st_uid, geteuid());
  ASSERT_THAT(stat("/proc/self/mem", &st), SyscallSucceeds());
  EXPECT_EQ(st.st_mode & 07777, 0600);
  ASSERT_THAT(stat("/proc/self/status", &st), SyscallSucceeds());
  EXPECT_EQ(st.st_mode & 07777, 0444);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_size, 0);
  ASSERT_THAT(stat("/proc/self/fd", &st), SyscallSucceeds());
  EXPECT_EQ(st.st_mode & 07777, 0500);
  // Another user may not read environ.
  std::string environ_path = "/proc/" + std::to_string(getpid()) + "/environ";
  EXPECT_EQ(RunAsNobody([&] {
              int fd = open(environ_path.c_str(), O_RDONLY);
              return fd < 0 && errno == EACCES ? 0 : 1;
            }),
            0);
  EXPECT_THAT(unlink("/proc/self/status"), SyscallFails());
}

TEST(ProcTest, Comm) {
  char old[16] = {};
  ASSERT_THAT(prctl(PR_GET_NAME, old), SyscallSucceeds());
  std::string path =
      "/proc/self/task/" + std::to_string(syscall(SYS_gettid)) + "/comm";
  ASSERT_TRUE(WriteFile(path, "renamed-thread-xyz"));
  EXPECT_EQ(ReadAll(path), "renamed-thread-\n");
  char now[16] = {};
  ASSERT_THAT(prctl(PR_GET_NAME, now), SyscallSucceeds());
  EXPECT_STREQ(now, "renamed-thread-");
  ASSERT_THAT(prctl(PR_SET_NAME, old), SyscallSucceeds());
  EXPECT_EQ(ReadAll("/proc/self/comm"), std::string(old) + "\n");
}

// A name is bytes: whatever PR_SET_NAME is given comes back as it was;
// status escapes only newlines and backslashes.
TEST(ProcTest, CommIsBytes) {
  char old[16] = {};
  ASSERT_THAT(prctl(PR_GET_NAME, old), SyscallSucceeds());
  const char name[] = "\xff\xfe\\a\nb\x80";
  ASSERT_THAT(prctl(PR_SET_NAME, name), SyscallSucceeds());
  char now[16] = {};
  ASSERT_THAT(prctl(PR_GET_NAME, now), SyscallSucceeds());
  EXPECT_STREQ(now, name);
  std::string self = "/proc/self/task/" + std::to_string(syscall(SYS_gettid));
  EXPECT_EQ(ReadAll(self + "/comm"), std::string(name) + "\n");
  EXPECT_THAT(ReadAll(self + "/status"),
              HasSubstr("Name:\t\xff\xfe\\\\a\\nb\x80\n"));
  EXPECT_THAT(ReadAll(self + "/stat"),
              HasSubstr(" (" + std::string(name) + ") "));
  // Written through comm, too.
  ASSERT_TRUE(WriteFile(self + "/comm", "\xc3\x28z"));
  ASSERT_THAT(prctl(PR_GET_NAME, now), SyscallSucceeds());
  EXPECT_STREQ(now, "\xc3\x28z");
  ASSERT_THAT(prctl(PR_SET_NAME, old), SyscallSucceeds());
}

// core_pattern keeps what root writes, up to 127 bytes. Natively it is the
// host's, so only its own value is written back there.
TEST(ProcTest, CorePattern) {
  const char* path = "/proc/sys/kernel/core_pattern";
  std::string old = ReadAll(path);
  ASSERT_FALSE(old.empty());
  ASSERT_TRUE(WriteFile(path, old));
  EXPECT_EQ(ReadAll(path), old);
  SKIP_IF(!IsRunningOnSandbox());
  ASSERT_TRUE(WriteFile(path, "|/usr/bin/dump %p %e\n"));
  EXPECT_EQ(ReadAll(path), "|/usr/bin/dump %p %e\n");
  ASSERT_TRUE(WriteFile(path, " core.%p"));
  EXPECT_EQ(ReadAll(path), " core.%p\n");
  ASSERT_TRUE(WriteFile(path, std::string(200, 'c')));
  EXPECT_EQ(ReadAll(path), std::string(127, 'c') + "\n");
  ASSERT_TRUE(WriteFile(path, old));
  EXPECT_EQ(ReadAll(path), old);
}

TEST(ProcTest, OomScoreAdj) {
  std::string old = ReadAll("/proc/self/oom_score_adj");
  ASSERT_TRUE(WriteFile("/proc/self/oom_score_adj", "123"));
  EXPECT_EQ(ReadAll("/proc/self/oom_score_adj"), "123\n");
  FileDescriptor fd(open("/proc/self/oom_score_adj", O_WRONLY));
  ASSERT_THAT(fd.get(), SyscallSucceeds());
  EXPECT_THAT(write(fd.get(), "5000", 4), SyscallFailsWithErrno(EINVAL));
  ASSERT_TRUE(WriteFile("/proc/self/oom_score_adj", old));
}

TEST(ProcTest, LimitsMountsCgroupNs) {
  struct rlimit rl;
  ASSERT_THAT(getrlimit(RLIMIT_NOFILE, &rl), SyscallSucceeds());
  std::string limits = ReadAll("/proc/self/limits");
  EXPECT_THAT(limits, StartsWith("Limit "));
  for (const std::string& line : Split(limits, '\n')) {
    if (line.rfind("Max open files", 0) == 0) {
      std::istringstream in(line.substr(strlen("Max open files")));
      std::string soft, hard;
      in >> soft >> hard;
      EXPECT_EQ(soft, std::to_string(rl.rlim_cur));
      EXPECT_EQ(hard, std::to_string(rl.rlim_max));
    }
  }
  EXPECT_THAT(ReadAll("/proc/self/mounts"), HasSubstr(" /proc proc "));
  EXPECT_EQ(Readlink("/proc/mounts"), "self/mounts");
  std::string info = ReadAll("/proc/self/mountinfo");
  bool found = false;
  for (const std::string& line : Split(info, '\n')) {
    std::vector<std::string> f;
    std::istringstream in(line);
    std::string x;
    while (in >> x) f.push_back(x);
    if (f.size() >= 10 && f[4] == "/proc") {
      found = true;
      auto dash = std::find(f.begin(), f.end(), "-");
      ASSERT_NE(dash, f.end());
      EXPECT_EQ(*(dash + 1), "proc");
    }
  }
  EXPECT_TRUE(found) << info;
  // The unified hierarchy's line (cgroup v1 hosts list others first).
  EXPECT_THAT(ReadAll("/proc/self/cgroup"), HasSubstr("0::/"));
  EXPECT_THAT(Readlink("/proc/self/ns/net"), StartsWith("net:["));
  EXPECT_THAT(Readlink("/proc/self/ns/pid"), StartsWith("pid:["));
  // Following the link reaches the namespace's inode, whose number the
  // link shows.
  struct stat ns;
  ASSERT_THAT(stat("/proc/self/ns/net", &ns), SyscallSucceeds());
  EXPECT_EQ(Readlink("/proc/self/ns/net"),
            "net:[" + std::to_string(ns.st_ino) + "]");
}

TEST(ProcTest, Threads) {
  std::atomic<pid_t> tid{0};
  std::atomic<bool> done{false};
  std::thread th([&] {
    tid = syscall(SYS_gettid);
    prctl(PR_SET_NAME, "worker");
    while (!done) usleep(1000);
  });
  while (tid == 0 || ReadAll("/proc/self/task/" + std::to_string(tid.load()) +
                             "/comm") != "worker\n") {
    usleep(1000);
  }
  EXPECT_THAT(DirEntries("/proc/self/task"),
              Contains(std::to_string(tid.load())));
  std::string status = ReadAll("/proc/self/status");
  EXPECT_EQ(StatusField(status, "Threads"), "2");
  std::string tstatus =
      ReadAll("/proc/self/task/" + std::to_string(tid.load()) + "/status");
  EXPECT_EQ(StatusField(tstatus, "Pid"), std::to_string(tid.load()));
  EXPECT_EQ(StatusField(tstatus, "Tgid"), std::to_string(getpid()));
  // A thread id is a valid name under /proc, though not listed.
  struct stat st;
  EXPECT_THAT(stat(("/proc/" + std::to_string(tid.load())).c_str(), &st),
              SyscallSucceeds());
  EXPECT_THAT(DirEntries("/proc"),
              ::testing::Not(Contains(std::to_string(tid.load()))));
  done = true;
  th.join();
}

TEST(ProcTest, OtherProcess) {
  HelperSpec spec;
  spec.action = "pause";
  pid_t pid = SpawnHelper(spec);
  ASSERT_THAT(pid, SyscallSucceeds());
  std::string dir = "/proc/" + std::to_string(pid);
  // Wait until it runs the helper (HelperPath may be a symbolic link).
  char* real = realpath(HelperPath().c_str(), nullptr);
  ASSERT_NE(real, nullptr);
  std::string want(real);
  free(real);
  std::string exe;
  for (int i = 0; i < 5000; i++) {
    char buf[PATH_MAX];
    ssize_t n = readlink((dir + "/exe").c_str(), buf, sizeof(buf));
    if (n > 0) exe.assign(buf, n);
    if (exe == want) break;
    usleep(1000);
  }
  EXPECT_EQ(exe, want);
  std::vector<std::string> f = StatFields(ReadAll(dir + "/stat"));
  ASSERT_GE(f.size(), 5u);
  EXPECT_EQ(f[3], std::to_string(getpid()));
  // It is a child of this thread.
  std::string tid = std::to_string(syscall(SYS_gettid));
  EXPECT_THAT(ReadAll("/proc/self/task/" + tid + "/children"),
              HasSubstr(std::to_string(pid) + " "));
  FileDescriptor dirfd(open(dir.c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_THAT(dirfd.get(), SyscallSucceeds());

  ASSERT_THAT(kill(pid, SIGKILL), SyscallSucceeds());
  siginfo_t info;
  ASSERT_THAT(waitid(P_PID, pid, &info, WEXITED | WNOWAIT), SyscallSucceeds());
  // A zombie keeps its directory, in state Z.
  f = StatFields(ReadAll(dir + "/stat"));
  ASSERT_GE(f.size(), 3u);
  EXPECT_EQ(f[2], "Z");
  ASSERT_EQ(WaitForStatus(pid), SIGKILL);
  // Once reaped, it is gone, also through a directory opened before.
  EXPECT_THAT(access(dir.c_str(), F_OK), SyscallFailsWithErrno(ENOENT));
  EXPECT_THAT(openat(dirfd.get(), "stat", O_RDONLY), SyscallFails());
}

TEST(ProcTest, SystemFiles) {
  std::string cpuinfo = ReadAll("/proc/cpuinfo");
  std::string stat = ReadAll("/proc/stat");
  int processors = 0, cpus = 0;
  for (const std::string& line : Split(cpuinfo, '\n')) {
    if (line.rfind("processor", 0) == 0) processors++;
  }
  for (const std::string& line : Split(stat, '\n')) {
    if (line.rfind("cpu", 0) == 0 && line[3] != ' ') cpus++;
  }
  EXPECT_GT(processors, 0);
  EXPECT_EQ(processors, cpus);
  EXPECT_THAT(stat, StartsWith("cpu "));
  EXPECT_THAT(stat, HasSubstr("\nbtime "));
  EXPECT_THAT(stat, HasSubstr("\nprocesses "));

  std::string meminfo = ReadAll("/proc/meminfo");
  unsigned long total = 0, free_kb = 0;
  ASSERT_EQ(sscanf(StatusField(meminfo, "MemTotal").c_str(), "%lu", &total), 1);
  ASSERT_EQ(sscanf(StatusField(meminfo, "MemFree").c_str(), "%lu", &free_kb),
            1);
  EXPECT_GT(total, 0u);
  EXPECT_LE(free_kb, total);
  EXPECT_NE(StatusField(meminfo, "MemAvailable"), "<missing>");

  double up = -1, idle = -1;
  ASSERT_EQ(sscanf(ReadAll("/proc/uptime").c_str(), "%lf %lf", &up, &idle), 2);
  EXPECT_GE(up, 0);
  EXPECT_GE(idle, 0);
  double l1, l5, l15;
  int running, total_tasks, last;
  ASSERT_EQ(sscanf(ReadAll("/proc/loadavg").c_str(), "%lf %lf %lf %d/%d %d",
                   &l1, &l5, &l15, &running, &total_tasks, &last),
            6);
  EXPECT_GE(total_tasks, 1);
  EXPECT_THAT(ReadAll("/proc/version"), StartsWith("Linux version "));
  std::string fs = ReadAll("/proc/filesystems");
  EXPECT_THAT(fs, HasSubstr("nodev\tproc\n"));
  EXPECT_THAT(fs, HasSubstr("nodev\ttmpfs\n"));
}

TEST(ProcTest, Sysctls) {
  struct utsname u;
  ASSERT_THAT(uname(&u), SyscallSucceeds());
  EXPECT_EQ(ReadAll("/proc/sys/kernel/hostname"), std::string(u.nodename) + "\n");
  EXPECT_EQ(ReadAll("/proc/sys/kernel/osrelease"), std::string(u.release) + "\n");
  EXPECT_EQ(ReadAll("/proc/sys/kernel/ostype"), "Linux\n");
  for (const char* p :
       {"/proc/sys/kernel/pid_max", "/proc/sys/kernel/ngroups_max",
        "/proc/sys/kernel/cap_last_cap", "/proc/sys/kernel/shmmax",
        "/proc/sys/vm/overcommit_memory", "/proc/sys/vm/max_map_count",
        "/proc/sys/vm/mmap_min_addr", "/proc/sys/fs/nr_open",
        "/proc/sys/fs/file-max", "/proc/sys/fs/pipe-max-size",
        "/proc/sys/net/core/somaxconn"}) {
    EXPECT_TRUE(IsUint(ReadAll(p))) << p;
  }
  EXPECT_EQ(ReadAll("/proc/sys/kernel/ngroups_max"), "65536\n");
  EXPECT_EQ(ReadAll("/proc/sys/fs/nr_open"), "1048576\n");
  std::string id = ReadAll("/proc/sys/kernel/random/boot_id");
  EXPECT_EQ(id.size(), 37u);
  EXPECT_EQ(ReadAll("/proc/sys/kernel/random/boot_id"), id);
  EXPECT_NE(ReadAll("/proc/sys/kernel/random/uuid"),
            ReadAll("/proc/sys/kernel/random/uuid"));
  struct stat st;
  ASSERT_THAT(stat("/proc/sys/kernel/hostname", &st), SyscallSucceeds());
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_mode & 07777, 0644);
  ASSERT_THAT(stat("/proc/sys/kernel/cap_last_cap", &st), SyscallSucceeds());
  EXPECT_EQ(st.st_mode & 07777, 0444);
  // Not even root may write a read-only sysctl.
  EXPECT_THAT(open("/proc/sys/kernel/cap_last_cap", O_WRONLY),
              SyscallFailsWithErrno(EACCES));
}

TEST(ProcTest, ReadOffsetsAndSeek) {
  FileDescriptor fd(open("/proc/self/status", O_RDONLY));
  ASSERT_THAT(fd.get(), SyscallSucceeds());
  char a[16], b[16];
  ASSERT_THAT(pread(fd.get(), a, sizeof(a), 0), SyscallSucceedsWithValue(16));
  ASSERT_THAT(read(fd.get(), b, sizeof(b)), SyscallSucceedsWithValue(16));
  EXPECT_EQ(std::string(a, 16), std::string(b, 16));
  EXPECT_THAT(lseek(fd.get(), 0, SEEK_SET), SyscallSucceedsWithValue(0));
  EXPECT_THAT(lseek(fd.get(), 0, SEEK_END), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(write(fd.get(), "x", 1), SyscallFailsWithErrno(EBADF));
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
