// wait4(2) and waitid(2): which children a wait sees, what it reports, and
// what it consumes; SIGCHLD; reparenting to a child subreaper; stop and
// continue reports; PR_SET_PDEATHSIG.

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/multiprocess_util.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

pid_t Spawn(const std::string& action, int exit_signal = SIGCHLD) {
  HelperSpec spec;
  spec.action = action;
  spec.exit_signal = exit_signal;
  const pid_t pid = SpawnHelper(spec);
  EXPECT_THAT(pid, SyscallSucceeds());
  return pid;
}

// Kill and reap a child that a test leaves running.
void KillAndReap(pid_t pid) {
  kill(pid, SIGKILL);
  WaitForStatus(pid);
}

long Wait4(pid_t pid, int* status, int options, struct rusage* ru = nullptr) {
  return syscall(SYS_wait4, pid, status, options, ru);
}

long Waitid(int idtype, int id, siginfo_t* info, int options,
            struct rusage* ru = nullptr) {
  return syscall(SYS_waitid, idtype, id, info, options, ru);
}

TEST(WaitTest, Wait4ReportsExitStatus) {
  const pid_t pid = Spawn("exit=17");
  int status = 0;
  ASSERT_THAT(Wait4(pid, &status, 0), SyscallSucceedsWithValue(pid));
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 17);
  // Reaped: nothing left to wait for.
  EXPECT_THAT(Wait4(pid, &status, 0), SyscallFailsWithErrno(ECHILD));
}

TEST(WaitTest, Wait4ReportsDeathBySignal) {
  const pid_t pid = Spawn("kill=15");
  int status = 0;
  ASSERT_THAT(Wait4(pid, &status, 0), SyscallSucceedsWithValue(pid));
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGTERM);
}

TEST(WaitTest, NullStatusAndRusageAreFine) {
  const pid_t pid = Spawn("exit=0");
  struct rusage ru;
  EXPECT_THAT(Wait4(pid, nullptr, 0, &ru), SyscallSucceedsWithValue(pid));
}

TEST(WaitTest, WnohangWhileRunning) {
  const pid_t pid = Spawn("pause");
  int status;
  EXPECT_THAT(Wait4(pid, &status, WNOHANG), SyscallSucceedsWithValue(0));
  siginfo_t info;
  memset(&info, 0xff, sizeof(info));
  EXPECT_THAT(Waitid(P_PID, pid, &info, WEXITED | WNOHANG), SyscallSucceeds());
  // Nothing to report: waitid zeroes the fields it would fill.
  EXPECT_EQ(info.si_signo, 0);
  EXPECT_EQ(info.si_pid, 0);
  EXPECT_EQ(info.si_code, 0);
  EXPECT_EQ(info.si_status, 0);
  KillAndReap(pid);
}

TEST(WaitTest, NoChildrenIsEchild) {
  int status;
  EXPECT_THAT(Wait4(-1, &status, 0), SyscallFailsWithErrno(ECHILD));
  EXPECT_THAT(Wait4(-1, &status, WNOHANG), SyscallFailsWithErrno(ECHILD));
  siginfo_t info;
  EXPECT_THAT(Waitid(P_ALL, 0, &info, WEXITED), SyscallFailsWithErrno(ECHILD));
}

TEST(WaitTest, NotMyChildIsEchild) {
  int status;
  EXPECT_THAT(Wait4(getpid(), &status, 0), SyscallFailsWithErrno(ECHILD));
}

TEST(WaitTest, InvalidArguments) {
  int status;
  EXPECT_THAT(Wait4(-1, &status, 0x100), SyscallFailsWithErrno(EINVAL));
  // wait4 does not take WNOWAIT.
  EXPECT_THAT(Wait4(-1, &status, WNOWAIT), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(Wait4(INT_MIN, &status, 0), SyscallFailsWithErrno(ESRCH));
  siginfo_t info;
  EXPECT_THAT(Waitid(P_ALL, 0, &info, 0), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(Waitid(P_ALL, 0, &info, WEXITED | 0x100),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(Waitid(7, 0, &info, WEXITED), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(Waitid(P_PID, 0, &info, WEXITED), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(Waitid(P_PGID, -1, &info, WEXITED), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(Waitid(P_PIDFD, -1, &info, WEXITED),
              SyscallFailsWithErrno(EINVAL));
  // A descriptor that is not a pidfd.
  EXPECT_THAT(Waitid(P_PIDFD, 1, &info, WEXITED), SyscallFailsWithErrno(EBADF));
}

TEST(WaitTest, WaitidReportsSiginfo) {
  const pid_t pid = Spawn("exit=3");
  siginfo_t info = {};
  ASSERT_THAT(Waitid(P_PID, pid, &info, WEXITED), SyscallSucceedsWithValue(0));
  EXPECT_EQ(info.si_signo, SIGCHLD);
  EXPECT_EQ(info.si_code, CLD_EXITED);
  EXPECT_EQ(info.si_pid, pid);
  EXPECT_EQ(info.si_uid, getuid());
  EXPECT_EQ(info.si_status, 3);

  const pid_t pid2 = Spawn("kill=9");
  ASSERT_THAT(Waitid(P_ALL, 0, &info, WEXITED), SyscallSucceedsWithValue(0));
  EXPECT_EQ(info.si_pid, pid2);
  EXPECT_EQ(info.si_code, CLD_KILLED);
  EXPECT_EQ(info.si_status, SIGKILL);
}

TEST(WaitTest, WnowaitLeavesTheZombie) {
  const pid_t pid = Spawn("exit=5");
  siginfo_t info = {};
  ASSERT_THAT(Waitid(P_PID, pid, &info, WEXITED | WNOWAIT), SyscallSucceeds());
  EXPECT_EQ(info.si_pid, pid);
  EXPECT_EQ(info.si_status, 5);
  info = {};
  ASSERT_THAT(Waitid(P_PID, pid, &info, WEXITED), SyscallSucceeds());
  EXPECT_EQ(info.si_pid, pid);
  EXPECT_EQ(info.si_status, 5);
  EXPECT_THAT(Waitid(P_PID, pid, &info, WEXITED), SyscallFailsWithErrno(ECHILD));
}

TEST(WaitTest, ZombieIsInvisibleWithoutWexited) {
  const pid_t pid = Spawn("exit=0");
  // Let it become a zombie: a WNOWAIT wait returns once it has.
  siginfo_t info = {};
  ASSERT_THAT(Waitid(P_PID, pid, &info, WEXITED | WNOWAIT), SyscallSucceeds());
  // Only stops are asked for: a zombie can report none, so it does not
  // count as a child to wait for (wait_task_zombie leaves notask_error).
  EXPECT_THAT(Waitid(P_PID, pid, &info, WSTOPPED | WNOHANG),
              SyscallFailsWithErrno(ECHILD));
  EXPECT_THAT(Waitid(P_PID, pid, &info, WEXITED), SyscallSucceeds());
}

TEST(WaitTest, ProcessGroupSelection) {
  // The first child leads a new group; the second joins it.
  HelperSpec leader;
  leader.action = "pause";
  leader.pre_exec = [] { syscall(SYS_setpgid, 0, 0); };
  const pid_t a = SpawnHelper(leader);
  ASSERT_THAT(a, SyscallSucceeds());
  HelperSpec member;
  member.action = "exit=2";
  member.pre_exec = [a] { syscall(SYS_setpgid, 0, a); };
  const pid_t b = SpawnHelper(member);
  ASSERT_THAT(b, SyscallSucceeds());
  EXPECT_EQ(getpgid(b), a);

  // Not in our group.
  int status;
  EXPECT_THAT(Wait4(0, &status, WNOHANG), SyscallFailsWithErrno(ECHILD));
  // In group a: b is the one to report.
  EXPECT_THAT(Wait4(-a, &status, 0), SyscallSucceedsWithValue(b));
  siginfo_t info;
  EXPECT_THAT(Waitid(P_PGID, a, &info, WEXITED | WNOHANG), SyscallSucceeds());
  EXPECT_EQ(info.si_pid, 0);
  KillAndReap(a);
}

TEST(WaitTest, OwnProcessGroupIsTheDefault) {
  const pid_t pid = Spawn("exit=1");
  int status;
  EXPECT_THAT(Wait4(0, &status, 0), SyscallSucceedsWithValue(pid));
  const pid_t pid2 = Spawn("exit=1");
  siginfo_t info = {};
  EXPECT_THAT(Waitid(P_PGID, 0, &info, WEXITED), SyscallSucceeds());
  EXPECT_EQ(info.si_pid, pid2);
}

TEST(WaitTest, CloneChildrenNeedWcloneOrWall) {
  // SIGWINCH is ignored by default, so its arrival is harmless.
  const pid_t pid = VforkRun([]() -> int { return 6; }, /*flags=*/SIGWINCH);
  ASSERT_THAT(pid, SyscallSucceeds());
  int status;
  EXPECT_THAT(Wait4(pid, &status, 0), SyscallFailsWithErrno(ECHILD));
  EXPECT_THAT(Wait4(pid, &status, __WALL), SyscallSucceedsWithValue(pid));
  EXPECT_EQ(WEXITSTATUS(status), 6);

  const pid_t pid2 = VforkRun([]() -> int { return 7; }, /*flags=*/0);
  ASSERT_THAT(pid2, SyscallSucceeds());
  // __WCLONE sees only clone children: an ordinary one is invisible.
  const pid_t ordinary = Spawn("exit=0");
  EXPECT_THAT(Wait4(ordinary, &status, __WCLONE), SyscallFailsWithErrno(ECHILD));
  EXPECT_THAT(Wait4(-1, &status, __WCLONE), SyscallSucceedsWithValue(pid2));
  EXPECT_THAT(Wait4(ordinary, &status, 0), SyscallSucceedsWithValue(ordinary));
}

TEST(WaitTest, WnothreadSeesOnlyTheCallersChildren) {
  const pid_t pid = Spawn("exit=0");
  std::thread t([pid] {
    int status;
    // The child belongs to the main thread.
    EXPECT_THAT(Wait4(pid, &status, __WNOTHREAD), SyscallFailsWithErrno(ECHILD));
    EXPECT_THAT(Wait4(pid, &status, 0), SyscallSucceedsWithValue(pid));
  });
  t.join();
}

TEST(WaitTest, IgnoredSigchldReapsChildrenAutomatically) {
  struct sigaction sa = {};
  sa.sa_handler = SIG_IGN;
  struct sigaction old;
  ASSERT_THAT(sigaction(SIGCHLD, &sa, &old), SyscallSucceeds());
  Spawn("exit=0");
  Spawn("exit=0");
  // The wait blocks until both are gone, then finds nothing.
  int status;
  EXPECT_THAT(Wait4(-1, &status, 0), SyscallFailsWithErrno(ECHILD));
  sigaction(SIGCHLD, &old, nullptr);
}

TEST(WaitTest, NocldwaitReapsChildrenAutomatically) {
  struct sigaction sa = {};
  sa.sa_handler = SIG_DFL;
  sa.sa_flags = SA_NOCLDWAIT;
  struct sigaction old;
  ASSERT_THAT(sigaction(SIGCHLD, &sa, &old), SyscallSucceeds());
  Spawn("exit=0");
  int status;
  EXPECT_THAT(Wait4(-1, &status, 0), SyscallFailsWithErrno(ECHILD));
  sigaction(SIGCHLD, &old, nullptr);
}

std::atomic<int> g_sigchld_pid{0};
std::atomic<int> g_sigchld_status{0};
std::atomic<int> g_sigchld_code{0};

TEST(WaitTest, SigchldCarriesTheChildsExit) {
  struct sigaction sa = {};
  sa.sa_sigaction = [](int, siginfo_t* info, void*) {
    g_sigchld_pid = info->si_pid;
    g_sigchld_status = info->si_status;
    g_sigchld_code = info->si_code;
  };
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  struct sigaction old;
  ASSERT_THAT(sigaction(SIGCHLD, &sa, &old), SyscallSucceeds());
  const pid_t pid = Spawn("exit=12");
  siginfo_t info;
  // The wait returns the exit even though SIGCHLD interrupts it.
  ASSERT_THAT(Waitid(P_PID, pid, &info, WEXITED | WNOWAIT), SyscallSucceeds());
  // The signal was sent before the parent was woken.
  sigset_t none;
  sigemptyset(&none);
  while (g_sigchld_pid.load() == 0) {
    sigsuspend(&none);
  }
  EXPECT_EQ(g_sigchld_pid.load(), pid);
  EXPECT_EQ(g_sigchld_code.load(), CLD_EXITED);
  EXPECT_EQ(g_sigchld_status.load(), 12);
  EXPECT_THAT(Waitid(P_PID, pid, &info, WEXITED), SyscallSucceeds());
  sigaction(SIGCHLD, &old, nullptr);
}

TEST(WaitTest, StopAndContinueAreReportedOnce) {
  const pid_t pid = Spawn("pause");
  ASSERT_THAT(kill(pid, SIGSTOP), SyscallSucceeds());
  int status;
  ASSERT_THAT(Wait4(pid, &status, WUNTRACED), SyscallSucceedsWithValue(pid));
  EXPECT_TRUE(WIFSTOPPED(status));
  EXPECT_EQ(WSTOPSIG(status), SIGSTOP);
  // Consumed: a second look finds nothing new.
  EXPECT_THAT(Wait4(pid, &status, WUNTRACED | WNOHANG),
              SyscallSucceedsWithValue(0));

  ASSERT_THAT(kill(pid, SIGCONT), SyscallSucceeds());
  siginfo_t info = {};
  ASSERT_THAT(Waitid(P_PID, pid, &info, WCONTINUED | WNOWAIT),
              SyscallSucceeds());
  EXPECT_EQ(info.si_code, CLD_CONTINUED);
  EXPECT_EQ(info.si_status, SIGCONT);
  ASSERT_THAT(Wait4(pid, &status, WCONTINUED), SyscallSucceedsWithValue(pid));
  EXPECT_TRUE(WIFCONTINUED(status));
  EXPECT_THAT(Wait4(pid, &status, WCONTINUED | WNOHANG),
              SyscallSucceedsWithValue(0));
  KillAndReap(pid);
}

TEST(WaitTest, SelfStopIsReported) {
  const pid_t pid = Spawn("stop");
  siginfo_t info = {};
  ASSERT_THAT(Waitid(P_PID, pid, &info, WSTOPPED), SyscallSucceeds());
  EXPECT_EQ(info.si_code, CLD_STOPPED);
  EXPECT_EQ(info.si_status, SIGSTOP);
  ASSERT_THAT(kill(pid, SIGCONT), SyscallSucceeds());
  int status;
  ASSERT_THAT(Wait4(pid, &status, 0), SyscallSucceedsWithValue(pid));
  EXPECT_TRUE(WIFEXITED(status));
}

TEST(WaitTest, OrphansGoToTheChildSubreaper) {
  // The test process may be the sandbox's init, which adopts orphans
  // anyway; natively it must ask to.
  ASSERT_THAT(prctl(PR_SET_CHILD_SUBREAPER, 1), SyscallSucceeds());
  int is_subreaper = 0;
  ASSERT_THAT(prctl(PR_GET_CHILD_SUBREAPER, &is_subreaper), SyscallSucceeds());
  EXPECT_EQ(is_subreaper, 1);

  HelperSpec spec;
  spec.action = "orphan";
  spec.env = {"PV_ORPHAN_ACTION=exit=33"};
  const pid_t child = SpawnHelper(spec);
  ASSERT_THAT(child, SyscallSucceeds());
  int status;
  ASSERT_THAT(Wait4(child, &status, 0), SyscallSucceedsWithValue(child));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  // The grandchild is ours now.
  const long grandchild = Wait4(-1, &status, 0);
  ASSERT_THAT(grandchild, SyscallSucceeds());
  EXPECT_NE(grandchild, child);
  EXPECT_EQ(WEXITSTATUS(status), 33);
  prctl(PR_SET_CHILD_SUBREAPER, 0);
}

TEST(WaitTest, ParentDeathSignalFiresWhenTheParentThreadExits) {
  // PR_SET_PDEATHSIG follows the thread that created the child: when it
  // exits, the child gets the signal even though our process lives on and
  // adopts the child.
  pid_t child = -1;
  std::thread t([&child] {
    HelperSpec spec;
    spec.action = "pause";
    spec.pre_exec = [] {
      syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGUSR1, 0, 0, 0);
    };
    child = SpawnHelper(spec);
  });
  t.join();
  ASSERT_GT(child, 0);
  const int status = WaitForStatus(child);
  EXPECT_TRUE(WIFSIGNALED(status)) << std::hex << status;
  EXPECT_EQ(WTERMSIG(status), SIGUSR1);
}

TEST(WaitTest, ManyThreadsSpawnAndWaitConcurrently) {
  constexpr int kThreads = 8;
  constexpr int kChildren = 10;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; i++) {
    threads.emplace_back([i, &ok] {
      for (int j = 0; j < kChildren; j++) {
        const int code = (i * kChildren + j) % 200;
        HelperSpec spec;
        spec.action = "exit=" + std::to_string(code);
        const pid_t pid = SpawnHelper(spec);
        if (pid < 0) continue;
        int status = 0;
        if (Wait4(pid, &status, 0) == pid && WIFEXITED(status) &&
            WEXITSTATUS(status) == code) {
          ok++;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kThreads * kChildren);
  int status;
  EXPECT_THAT(Wait4(-1, &status, WNOHANG), SyscallFailsWithErrno(ECHILD));
}

TEST(WaitTest, RusageOfAChildThatSpun) {
  const pid_t pid = Spawn("spin=100");
  struct rusage ru = {};
  int status;
  ASSERT_THAT(Wait4(pid, &status, 0, &ru), SyscallSucceedsWithValue(pid));
  const long user_us = ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec;
  const long sys_us = ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec;
  // The child saw 100 ms of CPU time before it exited.
  EXPECT_GE(user_us + sys_us, 100000);
  struct rusage children = {};
  ASSERT_THAT(getrusage(RUSAGE_CHILDREN, &children), SyscallSucceeds());
  EXPECT_GE(children.ru_utime.tv_sec * 1000000 + children.ru_utime.tv_usec,
            user_us);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
