// procfs counters: the load averages of /proc/loadavg, context switches
// (/proc/pid/status, /proc/stat ctxt), the fork count (/proc/stat
// processes), I/O accounting (/proc/pid/io) and /proc/meminfo.

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/sysinfo.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

using ::testing::MatchesRegex;

std::string ReadAll(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) {
    ADD_FAILURE() << "open " << path << ": " << strerror(errno);
    return "";
  }
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, n);
  close(fd);
  return out;
}

// Field returns the number after "key" (followed by ':' or ' ') at the
// start of a line of text, or -1.
long long Field(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, key.size(), key) != 0 || line.size() == key.size()) {
      continue;
    }
    char sep = line[key.size()];
    if (sep != ':' && sep != ' ') continue;
    return strtoll(line.c_str() + key.size() + 1, nullptr, 10);
  }
  return -1;
}

TEST(ProcLoadavg, Format) {
  std::string text = ReadAll("/proc/loadavg");
  EXPECT_THAT(text, MatchesRegex("[0-9]+\\.[0-9][0-9] [0-9]+\\.[0-9][0-9] "
                                 "[0-9]+\\.[0-9][0-9] [0-9]+/[0-9]+ [0-9]+\n"));
}

// Busy threads raise the one-minute load average once it has been sampled
// (every 5 s) while they ran.
TEST(ProcLoadavg, RisesUnderLoad) {
  std::atomic<bool> stop{false};
  std::vector<std::thread> spinners;
  for (int i = 0; i < 2; i++) {
    spinners.emplace_back([&stop] {
      while (!stop.load(std::memory_order_relaxed)) {
      }
    });
  }
  // Two samples at least; the host may be slower, so wait longer if needed.
  double one = 0;
  auto start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - start < std::chrono::seconds(30)) {
    sleep(1);
    one = strtod(ReadAll("/proc/loadavg").c_str(), nullptr);
    if (one > 0 &&
        std::chrono::steady_clock::now() - start > std::chrono::seconds(11)) {
      break;
    }
  }
  stop = true;
  for (auto& t : spinners) t.join();
  EXPECT_GT(one, 0.0);

  struct sysinfo si;
  ASSERT_EQ(sysinfo(&si), 0);
  EXPECT_GT(si.loads[0], 0u);
}

TEST(ProcStatus, VoluntarySwitchesCountWaits) {
  std::string before = ReadAll("/proc/self/status");
  long long vol = Field(before, "voluntary_ctxt_switches");
  long long nonvol = Field(before, "nonvoluntary_ctxt_switches");
  ASSERT_GE(vol, 0);
  ASSERT_GE(nonvol, 0);
  long long ctxt = Field(ReadAll("/proc/stat"), "ctxt");
  ASSERT_GE(ctxt, 0);

  for (int i = 0; i < 5; i++) {
    struct timespec ts = {0, 1000000};
    ASSERT_EQ(nanosleep(&ts, nullptr), 0);
  }

  std::string after = ReadAll("/proc/self/status");
  EXPECT_GE(Field(after, "voluntary_ctxt_switches"), vol + 5);
  EXPECT_GE(Field(after, "nonvoluntary_ctxt_switches"), nonvol);
  EXPECT_GE(Field(ReadAll("/proc/stat"), "ctxt"), ctxt + 5);
  // The thread's own directory shows the same counter.
  std::string self_task =
      ReadAll("/proc/self/task/" + std::to_string(gettid()) + "/status");
  EXPECT_GE(Field(self_task, "voluntary_ctxt_switches"), vol + 5);
}

// getrusage(2) reports the same context switches.
TEST(Rusage, ContextSwitches) {
  struct rusage self_before, thread_before, children_before;
  ASSERT_EQ(getrusage(RUSAGE_SELF, &self_before), 0);
  ASSERT_EQ(getrusage(RUSAGE_THREAD, &thread_before), 0);
  ASSERT_EQ(getrusage(RUSAGE_CHILDREN, &children_before), 0);
  for (int i = 0; i < 3; i++) {
    struct timespec ts = {0, 1000000};
    ASSERT_EQ(nanosleep(&ts, nullptr), 0);
  }
  pid_t pid = fork();
  if (pid == 0) {
    for (int i = 0; i < 3; i++) {
      struct timespec ts = {0, 1000000};
      nanosleep(&ts, nullptr);
    }
    _exit(0);
  }
  ASSERT_GT(pid, 0);
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  struct rusage self_after, thread_after, children_after;
  ASSERT_EQ(getrusage(RUSAGE_SELF, &self_after), 0);
  ASSERT_EQ(getrusage(RUSAGE_THREAD, &thread_after), 0);
  ASSERT_EQ(getrusage(RUSAGE_CHILDREN, &children_after), 0);
  EXPECT_GE(self_after.ru_nvcsw, self_before.ru_nvcsw + 3);
  EXPECT_GE(thread_after.ru_nvcsw, thread_before.ru_nvcsw + 3);
  EXPECT_GE(children_after.ru_nvcsw, children_before.ru_nvcsw + 3);
  EXPECT_GE(self_after.ru_nivcsw, self_before.ru_nivcsw);
  // A thread's switches stay the process's after it exits.
  struct rusage before_thread;
  ASSERT_EQ(getrusage(RUSAGE_SELF, &before_thread), 0);
  std::thread([] {
    for (int i = 0; i < 3; i++) {
      struct timespec ts = {0, 1000000};
      nanosleep(&ts, nullptr);
    }
  }).join();
  struct rusage after_thread;
  ASSERT_EQ(getrusage(RUSAGE_SELF, &after_thread), 0);
  EXPECT_GE(after_thread.ru_nvcsw, before_thread.ru_nvcsw + 3);
}

TEST(ProcStat, ProcessesCountsForks) {
  long long before = Field(ReadAll("/proc/stat"), "processes");
  ASSERT_GT(before, 0);
  for (int i = 0; i < 3; i++) {
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    ASSERT_GT(pid, 0);
    int status;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
  }
  std::thread([] {}).join();
  EXPECT_GE(Field(ReadAll("/proc/stat"), "processes"), before + 4);
}

struct IO {
  long long rchar, wchar, syscr, syscw;
};

IO ReadIO(const std::string& path) {
  std::string text = ReadAll(path);
  return {Field(text, "rchar"), Field(text, "wchar"), Field(text, "syscr"),
          Field(text, "syscw")};
}

TEST(ProcIO, CountsReadsAndWrites) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  IO before = ReadIO("/proc/self/io");
  ASSERT_GE(before.rchar, 0);
  ASSERT_GE(before.syscw, 0);

  char buf[1000];
  memset(buf, 'x', sizeof(buf));
  for (int i = 0; i < 3; i++) {
    ASSERT_EQ(write(fds[1], buf, sizeof(buf)), (ssize_t)sizeof(buf));
  }
  ASSERT_EQ(read(fds[0], buf, sizeof(buf)), (ssize_t)sizeof(buf));
  struct iovec iov = {buf, 500};
  ASSERT_EQ(readv(fds[0], &iov, 1), 500);

  IO after = ReadIO("/proc/self/io");
  EXPECT_GE(after.wchar - before.wchar, 3000);
  EXPECT_GE(after.syscw - before.syscw, 3);
  // Reading /proc/self/io itself counts too.
  EXPECT_GE(after.rchar - before.rchar, 1500);
  EXPECT_GE(after.syscr - before.syscr, 2);
  close(fds[0]);
  close(fds[1]);
}

// sendfile(2) counts as a read and a write of what it moved.
TEST(ProcIO, CountsSendfile) {
  int mfd = memfd_create("io", 0);
  ASSERT_GE(mfd, 0);
  char buf[300] = {};
  ASSERT_EQ(write(mfd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  IO before = ReadIO("/proc/self/io");
  off_t off = 0;
  ASSERT_EQ(sendfile(fds[1], mfd, &off, 300), 300);
  IO after = ReadIO("/proc/self/io");
  // Reading /proc/self/io itself adds to rchar and syscr.
  EXPECT_GE(after.rchar - before.rchar, 300);
  EXPECT_GE(after.wchar - before.wchar, 300);
  EXPECT_GE(after.syscw - before.syscw, 1);
  close(fds[0]);
  close(fds[1]);
  close(mfd);
}

// A process's counters include its threads', even after they exit; a
// thread's directory shows only its own.
TEST(ProcIO, ProcessSumsItsThreads) {
  int fd = open("/dev/null", O_WRONLY);
  ASSERT_GE(fd, 0);
  IO before = ReadIO("/proc/self/io");
  IO mine_before =
      ReadIO("/proc/self/task/" + std::to_string(gettid()) + "/io");
  std::thread([fd] {
    char buf[4096] = {};
    for (int i = 0; i < 4; i++) write(fd, buf, sizeof(buf));
  }).join();
  IO after = ReadIO("/proc/self/io");
  IO mine_after =
      ReadIO("/proc/self/task/" + std::to_string(gettid()) + "/io");
  EXPECT_GE(after.wchar - before.wchar, 4 * 4096);
  EXPECT_GE(after.syscw - before.syscw, 4);
  EXPECT_LT(mine_after.wchar - mine_before.wchar, 4096);
  close(fd);
}

std::map<std::string, long long> Meminfo() {
  std::map<std::string, long long> out;
  std::string text = ReadAll("/proc/meminfo");
  for (const char* key : {"MemTotal", "MemFree", "MemAvailable"}) {
    out[key] = Field(text, key);
  }
  return out;
}

TEST(ProcMeminfo, Consistent) {
  auto m = Meminfo();
  EXPECT_GT(m["MemTotal"], 0);
  EXPECT_GE(m["MemFree"], 0);
  EXPECT_LE(m["MemFree"], m["MemTotal"]);
  EXPECT_LE(m["MemAvailable"], m["MemTotal"]);
  struct sysinfo si;
  ASSERT_EQ(sysinfo(&si), 0);
  EXPECT_EQ((long long)(si.totalram * si.mem_unit / 1024), m["MemTotal"]);
}

// In the sandbox memory is the sandbox's own: touching memory lowers
// MemFree by as much. (On a shared host other processes move it.)
TEST(ProcMeminfo, SandboxMemoryIsItsOwn) {
  SKIP_IF(!IsRunningOnSandbox());
  const size_t size = 64 << 20;
  long long before = Meminfo()["MemFree"];
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  memset(p, 1, size);
  long long after = Meminfo()["MemFree"];
  EXPECT_GE(before - after, (long long)(size / 1024) * 3 / 4);
  ASSERT_EQ(munmap(p, size), 0);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
