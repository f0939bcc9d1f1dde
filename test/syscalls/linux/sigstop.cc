// Job control: stopping and continuing a process with SIGSTOP, SIGTSTP and
// SIGCONT, as `kill -STOP` and `kill -CONT` do, and what its parent sees
// through wait4(2) and SIGCHLD.
//
// Every test forks a child to stop: they are skipped in the sandbox until
// it has fork(2) and wait4(2). Children report through shared memory rather
// than pipes, which the sandbox does not have yet either.

#include <linux/futex.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/signal_util.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

// Reports from a child to the test travel through shared memory, with a
// futex to wait on, so that these tests need only fork(2) and wait4(2).
struct ReportQueue {
  // Slots taken by the child; a slot is published when its byte is set.
  std::atomic<uint32_t> next;
  // Bumped after each published byte; the parent waits on it.
  std::atomic<uint32_t> published;
  std::atomic<char> bytes[1024];
};

// The child's queue (set before fork, shared by both processes).
ReportQueue* reports = nullptr;

// async-signal-safe: atomics and futex(2) only.
void SendReport(char c) {
  uint32_t slot = reports->next.fetch_add(1);
  reports->bytes[slot % 1024].store(c);
  reports->published.fetch_add(1);
  syscall(SYS_futex, &reports->published, FUTEX_WAKE, INT_MAX, nullptr,
          nullptr, 0);
}

// async-signal-safe: SendReport only.
void ReportHandler(int signo) { SendReport(static_cast<char>(signo)); }

int64_t NowMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

// A child process that runs `body` (which should loop forever) and reports
// through a ReportQueue.
class Child {
 public:
  explicit Child(std::function<void()> body) {
    queue_ = static_cast<ReportQueue*>(mmap(nullptr, sizeof(ReportQueue),
                                            PROT_READ | PROT_WRITE,
                                            MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    EXPECT_NE(queue_, MAP_FAILED);
    reports = queue_;
    pid_ = fork();
    if (pid_ == 0) {
      body();
      _exit(0);
    }
    EXPECT_THAT(pid_, SyscallSucceeds());
  }
  ~Child() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    munmap(queue_, sizeof(ReportQueue));
  }

  pid_t pid() const { return pid_; }

  // Returns the next report byte, or -1 if none comes within timeout_ms.
  int Report(int timeout_ms = 10000) {
    int64_t deadline = NowMs() + timeout_ms;
    for (;;) {
      uint32_t seen = queue_->published.load();
      char c = queue_->bytes[read_ % 1024].load();
      if (c != 0) {
        read_++;
        return c;
      }
      int64_t left = deadline - NowMs();
      if (left <= 0) return -1;
      struct timespec ts = {static_cast<time_t>(left / 1000),
                            static_cast<long>(left % 1000) * 1000000};
      syscall(SYS_futex, &queue_->published, FUTEX_WAIT, seen, &ts, nullptr,
              0);
    }
  }

  // Waits for the child with options and returns the status.
  int Wait(int options) {
    int status = 0;
    EXPECT_THAT(waitpid(pid_, &status, options), SyscallSucceedsWithValue(pid_));
    return status;
  }

  void Reaped() { pid_ = -1; }

 private:
  pid_t pid_ = -1;
  ReportQueue* queue_ = nullptr;
  uint32_t read_ = 0;
};

void Idle() {
  for (;;) pause();
}

// Installs ReportHandler for signo in the child, then reports 'r' (ready).
void HandleThenIdle(int signo) {
  struct sigaction act = {};
  act.sa_handler = ReportHandler;
  sigaction(signo, &act, nullptr);
  SendReport('r');
  Idle();
}

class SigstopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sigset_t chld = SignalSet({SIGCHLD});
    ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &chld, &saved_), 0);
  }
  void TearDown() override {
    sigset_t chld = SignalSet({SIGCHLD});
    struct timespec zero = {};
    while (sigtimedwait(&chld, nullptr, &zero) > 0) {
    }
    EXPECT_EQ(pthread_sigmask(SIG_SETMASK, &saved_, nullptr), 0);
  }

 private:
  sigset_t saved_;
};

// Takes the next SIGCHLD within 10 seconds.
siginfo_t TakeSigchld() {
  sigset_t chld = SignalSet({SIGCHLD});
  siginfo_t info = {};
  struct timespec timeout = {10, 0};
  EXPECT_THAT(sigtimedwait(&chld, &info, &timeout),
              SyscallSucceedsWithValue(SIGCHLD));
  return info;
}

TEST_F(SigstopTest, StopAndContinueReportedByWait) {
  Child child(Idle);
  ASSERT_THAT(kill(child.pid(), SIGSTOP), SyscallSucceeds());
  int status = child.Wait(WUNTRACED);
  ASSERT_TRUE(WIFSTOPPED(status)) << std::hex << status;
  EXPECT_EQ(WSTOPSIG(status), SIGSTOP);
  // Reported once.
  EXPECT_THAT(waitpid(child.pid(), &status, WUNTRACED | WNOHANG),
              SyscallSucceedsWithValue(0));

  ASSERT_THAT(kill(child.pid(), SIGCONT), SyscallSucceeds());
  status = child.Wait(WCONTINUED);
  EXPECT_TRUE(WIFCONTINUED(status)) << std::hex << status;
  EXPECT_THAT(waitpid(child.pid(), &status, WCONTINUED | WNOHANG),
              SyscallSucceedsWithValue(0));

  ASSERT_THAT(kill(child.pid(), SIGKILL), SyscallSucceeds());
  status = child.Wait(0);
  child.Reaped();
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
}

TEST_F(SigstopTest, SigchldTellsStopAndContinue) {
  Child child(Idle);
  ASSERT_THAT(kill(child.pid(), SIGSTOP), SyscallSucceeds());
  siginfo_t info = TakeSigchld();
  EXPECT_EQ(info.si_code, CLD_STOPPED);
  EXPECT_EQ(info.si_status, SIGSTOP);
  EXPECT_EQ(info.si_pid, child.pid());
  child.Wait(WUNTRACED);

  ASSERT_THAT(kill(child.pid(), SIGCONT), SyscallSucceeds());
  info = TakeSigchld();
  EXPECT_EQ(info.si_code, CLD_CONTINUED);
  EXPECT_EQ(info.si_status, SIGCONT);
  EXPECT_EQ(info.si_pid, child.pid());
}

TEST_F(SigstopTest, NoCldStopSuppressesSigchldButNotWait) {
  struct sigaction act = {};
  act.sa_handler = SIG_DFL;
  act.sa_flags = SA_NOCLDSTOP;
  ScopedSigaction action(SIGCHLD, act);
  Child child(Idle);
  ASSERT_THAT(kill(child.pid(), SIGSTOP), SyscallSucceeds());
  int status = child.Wait(WUNTRACED);
  EXPECT_TRUE(WIFSTOPPED(status));
  sigset_t pending;
  ASSERT_THAT(sigpending(&pending), SyscallSucceeds());
  EXPECT_FALSE(sigismember(&pending, SIGCHLD));
  ASSERT_THAT(kill(child.pid(), SIGCONT), SyscallSucceeds());
  status = child.Wait(WCONTINUED);
  EXPECT_TRUE(WIFCONTINUED(status));
}

TEST_F(SigstopTest, SignalsWaitUntilContinued) {
  Child child([] { HandleThenIdle(SIGUSR1); });
  ASSERT_EQ(child.Report(), 'r');
  ASSERT_THAT(kill(child.pid(), SIGSTOP), SyscallSucceeds());
  child.Wait(WUNTRACED);
  ASSERT_THAT(kill(child.pid(), SIGUSR1), SyscallSucceeds());
  EXPECT_EQ(child.Report(100), -1) << "a stopped process ran a handler";
  ASSERT_THAT(kill(child.pid(), SIGCONT), SyscallSucceeds());
  EXPECT_EQ(child.Report(), SIGUSR1);
}

TEST_F(SigstopTest, SigkillEndsAStop) {
  Child child(Idle);
  ASSERT_THAT(kill(child.pid(), SIGSTOP), SyscallSucceeds());
  child.Wait(WUNTRACED);
  ASSERT_THAT(kill(child.pid(), SIGKILL), SyscallSucceeds());
  int status = child.Wait(0);
  child.Reaped();
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
}

TEST_F(SigstopTest, HandledTstpDoesNotStop) {
  Child child([] { HandleThenIdle(SIGTSTP); });
  ASSERT_EQ(child.Report(), 'r');
  ASSERT_THAT(kill(child.pid(), SIGTSTP), SyscallSucceeds());
  EXPECT_EQ(child.Report(), SIGTSTP);
  int status;
  EXPECT_THAT(waitpid(child.pid(), &status, WUNTRACED | WNOHANG),
              SyscallSucceedsWithValue(0));
}

TEST_F(SigstopTest, DefaultTstpStops) {
  // In a process group of its own, whose parent (this test) is in another
  // group of the same session, so that the group is not orphaned whatever
  // the group this test runs in.
  Child child([] {
    setpgid(0, 0);
    SendReport('r');
    Idle();
  });
  ASSERT_EQ(child.Report(), 'r');
  ASSERT_THAT(kill(child.pid(), SIGTSTP), SyscallSucceeds());
  int status = child.Wait(WUNTRACED);
  ASSERT_TRUE(WIFSTOPPED(status));
  EXPECT_EQ(WSTOPSIG(status), SIGTSTP);
}

TEST_F(SigstopTest, ContinueRunsSigcontHandler) {
  Child child([] { HandleThenIdle(SIGCONT); });
  ASSERT_EQ(child.Report(), 'r');
  ASSERT_THAT(kill(child.pid(), SIGSTOP), SyscallSucceeds());
  child.Wait(WUNTRACED);
  ASSERT_THAT(kill(child.pid(), SIGCONT), SyscallSucceeds());
  EXPECT_EQ(child.Report(), SIGCONT);
}

TEST_F(SigstopTest, ContinueDiscardsPendingStop) {
  // The child blocks SIGTSTP; a SIGCONT sent after it discards the pending
  // SIGTSTP, so unblocking it later does not stop the child.
  Child child([] {
    sigset_t tstp;
    sigemptyset(&tstp);
    sigaddset(&tstp, SIGTSTP);
    sigprocmask(SIG_BLOCK, &tstp, nullptr);
    HandleThenIdle(SIGUSR1);
  });
  ASSERT_EQ(child.Report(), 'r');
  ASSERT_THAT(kill(child.pid(), SIGTSTP), SyscallSucceeds());
  ASSERT_THAT(kill(child.pid(), SIGCONT), SyscallSucceeds());
  // Not stopped; still alive and handling signals.
  ASSERT_THAT(kill(child.pid(), SIGUSR1), SyscallSucceeds());
  EXPECT_EQ(child.Report(), SIGUSR1);
  int status;
  EXPECT_THAT(waitpid(child.pid(), &status, WUNTRACED | WNOHANG),
              SyscallSucceedsWithValue(0));
}

TEST_F(SigstopTest, StopDiscardsPendingContinue) {
  // The child blocks SIGCONT and handles it; the SIGCONT pending is
  // discarded by the SIGSTOP that follows (though the continue itself still
  // happens when SIGCONT is sent again).
  Child child([] {
    sigset_t cont;
    sigemptyset(&cont);
    sigaddset(&cont, SIGCONT);
    sigprocmask(SIG_BLOCK, &cont, nullptr);
    struct sigaction act = {};
    act.sa_handler = ReportHandler;
    sigaction(SIGCONT, &act, nullptr);
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, nullptr);
    SendReport('r');
    // Wait for the parent's go (SIGUSR1), then unblock SIGCONT.
    int sig;
    sigwait(&usr1, &sig);
    sigprocmask(SIG_UNBLOCK, &cont, nullptr);
    SendReport('u');
    Idle();
  });
  ASSERT_EQ(child.Report(), 'r');
  ASSERT_THAT(kill(child.pid(), SIGCONT), SyscallSucceeds());
  ASSERT_THAT(kill(child.pid(), SIGSTOP), SyscallSucceeds());
  child.Wait(WUNTRACED);
  // Continue with SIGCONT blocked, then let the child unblock it: the
  // handler runs once, for the second SIGCONT only.
  ASSERT_THAT(kill(child.pid(), SIGCONT), SyscallSucceeds());
  ASSERT_THAT(kill(child.pid(), SIGUSR1), SyscallSucceeds());
  EXPECT_EQ(child.Report(), SIGCONT);
  EXPECT_EQ(child.Report(), 'u');
  EXPECT_EQ(child.Report(100), -1);
}

TEST_F(SigstopTest, EveryThreadStops) {
  auto* counters = static_cast<std::atomic<uint64_t>*>(
      mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
           0));
  ASSERT_NE(counters, MAP_FAILED);
  constexpr int kThreads = 4;
  Child child([counters] {
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; i++) {
      threads.emplace_back([counters, i] {
        for (;;) counters[i]++;
      });
    }
    SendReport('r');
    Idle();
  });
  ASSERT_EQ(child.Report(), 'r');
  ASSERT_THAT(kill(child.pid(), SIGSTOP), SyscallSucceeds());
  int status = child.Wait(WUNTRACED);
  ASSERT_TRUE(WIFSTOPPED(status));
  uint64_t before[kThreads], after[kThreads];
  for (int i = 0; i < kThreads; i++) before[i] = counters[i].load();
  usleep(100000);
  for (int i = 0; i < kThreads; i++) after[i] = counters[i].load();
  for (int i = 0; i < kThreads; i++) {
    EXPECT_EQ(before[i], after[i]) << "thread " << i << " ran while stopped";
  }
  ASSERT_THAT(kill(child.pid(), SIGCONT), SyscallSucceeds());
  usleep(100000);
  for (int i = 0; i < kThreads; i++) {
    EXPECT_GT(counters[i].load(), after[i]) << "thread " << i << " still stopped";
  }
  munmap(counters, 4096);
}

TEST_F(SigstopTest, OrphanedProcessGroupIgnoresTstp) {
  // The child is alone in a new session, so its process group has no
  // parent in another group of its session: it is orphaned, and the tty
  // stop signals are discarded. SIGSTOP still stops it.
  Child child([] {
    setsid();
    SendReport('r');
    Idle();
  });
  ASSERT_EQ(child.Report(), 'r');
  for (int sig : {SIGTSTP, SIGTTIN, SIGTTOU}) {
    ASSERT_THAT(kill(child.pid(), sig), SyscallSucceeds());
  }
  usleep(50000);
  int status;
  EXPECT_THAT(waitpid(child.pid(), &status, WUNTRACED | WNOHANG),
              SyscallSucceedsWithValue(0));
  ASSERT_THAT(kill(child.pid(), SIGSTOP), SyscallSucceeds());
  status = child.Wait(WUNTRACED);
  EXPECT_TRUE(WIFSTOPPED(status));
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
