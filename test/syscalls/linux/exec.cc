// execve(2) and execveat(2): what the new program gets (argv, envp, auxv,
// descriptors, signal state, credentials, name), `#!` scripts, exec from a
// thread, and the errors.
//
// The scripts in linux/testdata (copied to exec_testdata by the build) name
// their interpreter by a path relative to the runfiles root, which is the
// working directory of a Bazel test.

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/multiprocess_util.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

constexpr char kTestData[] = "test/syscalls/exec_testdata/";

std::string TestData(const std::string& name) { return kTestData + name; }

// RunHelper runs spec and returns the helper's exit status, or -1 if it did
// not exit normally.
int RunHelper(const HelperSpec& spec) {
  int exec_errno = 0;
  const pid_t pid = SpawnHelper(spec, &exec_errno);
  EXPECT_THAT(pid, SyscallSucceeds());
  if (pid < 0) return -1;
  const int status = WaitForStatus(pid);
  EXPECT_EQ(exec_errno, 0) << "execve: " << strerror(exec_errno);
  if (!WIFEXITED(status)) {
    ADD_FAILURE() << "helper status " << std::hex << status;
    return -1;
  }
  return WEXITSTATUS(status);
}

std::string Hex(uint64_t v) {
  char buf[32];
  snprintf(buf, sizeof(buf), "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

uint64_t OwnCaps(int which) {
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] = {};
  EXPECT_THAT(syscall(SYS_capget, &hdr, data), SyscallSucceeds());
  if (which == 0) return data[0].effective | (uint64_t{data[1].effective} << 32);
  return data[0].permitted | (uint64_t{data[1].permitted} << 32);
}

// SetUidKeepingFileAccess makes the calling thread uid 65534 in every
// respect but its fs uid, which stays 0 so that it can still reach the test
// files through directories that only root may search. Async-signal-safe.
void SetUidKeepingFileAccess() {
  syscall(SYS_setresuid, 65534, 65534, 0);
  syscall(SYS_setfsuid, 0);
}

// Credential changes in a vfork child affect the memory it shares with us;
// Linux then marks our address space non-dumpable. Put that back.
class ExecTest : public ::testing::Test {
 protected:
  void TearDown() override { prctl(PR_SET_DUMPABLE, 1); }
};

TEST_F(ExecTest, ArgvAndEnvpReachTheProgram) {
  HelperSpec spec;
  spec.argv = {HelperPath(), "one", "", "three four"};
  spec.env = {"FOO=bar"};
  spec.checks = {"argc=4", "argv[1]=one", "argv[2]=", "argv[3]=three four",
                 "env:FOO=bar", "noenv:BAZ"};
  EXPECT_EQ(RunHelper(spec), 0);
}

TEST_F(ExecTest, EmptyArgvBecomesOneEmptyString) {
  // Since Linux 5.18 an empty argv reaches the program as {""}.
  const std::string path = HelperPath();
  char check[] = "PV_CHECK=argc=1\nargv[0]=";
  char* envp[] = {check, nullptr};
  char* argv[] = {nullptr};
  const pid_t pid = VforkRun([&]() -> int {
    syscall(SYS_execve, path.c_str(), argv, envp);
    return 127;
  });
  ASSERT_THAT(pid, SyscallSucceeds());
  const int status = WaitForStatus(pid);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST_F(ExecTest, NullArgvAndEnvpAreEmpty) {
  const std::string path = HelperPath();
  const pid_t pid = VforkRun([&]() -> int {
    syscall(SYS_execve, path.c_str(), nullptr, nullptr);
    return 127;
  });
  ASSERT_THAT(pid, SyscallSucceeds());
  const int status = WaitForStatus(pid);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST_F(ExecTest, ExecfnAndCommComeFromThePath) {
  HelperSpec spec;
  spec.checks = {"execfn=" + HelperPath(), "comm=proc_helper", "secure=0"};
  EXPECT_EQ(RunHelper(spec), 0);
}

TEST_F(ExecTest, CloseOnExecDescriptorsAreClosed) {
  ASSERT_THAT(dup3(1, 50, O_CLOEXEC), SyscallSucceedsWithValue(50));
  ASSERT_THAT(dup2(1, 51), SyscallSucceedsWithValue(51));
  HelperSpec spec;
  spec.checks = {"fd-closed=50", "fd-open=51", "fd-open=1"};
  EXPECT_EQ(RunHelper(spec), 0);
  close(50);
  close(51);
}

TEST_F(ExecTest, CaughtSignalsResetIgnoredSignalsStay) {
  struct sigaction sa = {};
  sa.sa_handler = [](int) {};
  struct sigaction old1, old2;
  ASSERT_THAT(sigaction(SIGUSR1, &sa, &old1), SyscallSucceeds());
  sa.sa_handler = SIG_IGN;
  ASSERT_THAT(sigaction(SIGUSR2, &sa, &old2), SyscallSucceeds());
  HelperSpec spec;
  spec.checks = {"sig-dfl=10", "sig-ign=12"};
  EXPECT_EQ(RunHelper(spec), 0);
  sigaction(SIGUSR1, &old1, nullptr);
  sigaction(SIGUSR2, &old2, nullptr);
}

TEST_F(ExecTest, SignalMaskAndPendingSignalsSurvive) {
  HelperSpec spec;
  spec.pre_exec = [] {
    uint64_t set = 1ull << (SIGUSR1 - 1);
    syscall(SYS_rt_sigprocmask, SIG_BLOCK, &set, nullptr, 8);
    syscall(SYS_tgkill, syscall(SYS_getpid), syscall(SYS_gettid), SIGUSR1);
  };
  spec.checks = {"sig-blocked=10", "sig-pending=10"};
  EXPECT_EQ(RunHelper(spec), 0);
}

TEST_F(ExecTest, AlternateSignalStackIsDropped) {
  static char altstack[64 * 1024];
  HelperSpec spec;
  spec.pre_exec = [] {
    stack_t ss = {};
    ss.ss_sp = altstack;
    ss.ss_size = sizeof(altstack);
    syscall(SYS_sigaltstack, &ss, nullptr);
  };
  spec.checks = {"altstack-disabled"};
  EXPECT_EQ(RunHelper(spec), 0);
}

TEST_F(ExecTest, RootKeepsItsCapabilities) {
  HelperSpec spec;
  spec.checks = {"euid=0", "cap-prm=" + Hex(OwnCaps(1)),
                 "cap-eff=" + Hex(OwnCaps(1)), "secure=0", "dumpable=1"};
  EXPECT_EQ(RunHelper(spec), 0);
}

TEST_F(ExecTest, NonRootLosesCapabilities) {
  HelperSpec spec;
  spec.pre_exec = [] { SetUidKeepingFileAccess(); };
  // The saved and fs uids follow the effective one. A change of fs uid by
  // the exec makes the process non-dumpable (commit_creds).
  spec.checks = {"ruid=65534", "euid=65534", "suid=65534", "cap-prm=0",
                 "cap-eff=0",  "secure=0",   "dumpable=0"};
  EXPECT_EQ(RunHelper(spec), 0);
}

TEST_F(ExecTest, EffectiveRootWithOtherRealUidIsSecure) {
  HelperSpec spec;
  spec.pre_exec = [] { syscall(SYS_setresuid, 65534, 0, 65534); };
  // The saved uid follows the effective one; such a process is not
  // dumpable.
  spec.checks = {"ruid=65534", "euid=0", "suid=0", "secure=1", "dumpable=0",
                 "cap-eff=" + Hex(OwnCaps(1))};
  EXPECT_EQ(RunHelper(spec), 0);
}

TEST_F(ExecTest, AmbientCapabilitiesSurviveForNonRoot) {
  constexpr int kCap = CAP_NET_BIND_SERVICE;
  static struct __user_cap_header_struct hdr;
  static struct __user_cap_data_struct data[2];
  const uint64_t permitted = OwnCaps(1);
  HelperSpec spec;
  spec.pre_exec = [permitted] {
    syscall(SYS_prctl, PR_SET_KEEPCAPS, 1, 0, 0, 0);
    syscall(SYS_setresuid, 65534, 65534, 65534);
    hdr.version = _LINUX_CAPABILITY_VERSION_3;
    hdr.pid = 0;
    // Keep the right to search directories that only root may read.
    data[0].effective = 1u << CAP_DAC_READ_SEARCH;
    data[1].effective = 0;
    data[0].permitted = static_cast<uint32_t>(permitted);
    data[1].permitted = static_cast<uint32_t>(permitted >> 32);
    data[0].inheritable = 1u << kCap;
    data[1].inheritable = 0;
    syscall(SYS_capset, &hdr, data);
    syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, kCap, 0, 0);
  };
  spec.checks = {"euid=65534", "cap-prm=" + Hex(1ull << kCap),
                 "cap-eff=" + Hex(1ull << kCap),
                 "cap-inh=" + Hex(1ull << kCap), "secure=0"};
  EXPECT_EQ(RunHelper(spec), 0);
}

TEST_F(ExecTest, ParentDeathSignalSurvivesExec) {
  HelperSpec spec;
  spec.pre_exec = [] { syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGUSR1, 0, 0, 0); };
  spec.checks = {"pdeathsig=10"};
  EXPECT_EQ(RunHelper(spec), 0);
}

TEST_F(ExecTest, CredentialChangeClearsParentDeathSignal) {
  HelperSpec spec;
  spec.pre_exec = [] {
    syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGUSR1, 0, 0, 0);
    SetUidKeepingFileAccess();
  };
  spec.checks = {"pdeathsig=0"};
  EXPECT_EQ(RunHelper(spec), 0);
}

TEST_F(ExecTest, ExecFromAThreadKillsTheOthersAndTakesThePid) {
  HelperSpec spec;
  spec.action = "exec-from-thread";
  const pid_t pid = SpawnHelper(spec);
  ASSERT_THAT(pid, SyscallSucceeds());
  const int status = WaitForStatus(pid);
  ASSERT_TRUE(WIFEXITED(status)) << std::hex << status;
  EXPECT_EQ(WEXITSTATUS(status), 42);
}

// ExecErrno runs execve(path, argv, envp) in a vfork child and returns the
// errno it failed with, or 0 if it succeeded (the program then ran).
int ExecErrno(const char* path, char* const* argv, char* const* envp,
              int dirfd = AT_FDCWD, int flags = -1) {
  int err = 0;
  const pid_t pid = VforkRun([&]() -> int {
    long r = flags < 0 ? syscall(SYS_execve, path, argv, envp)
                       : syscall(SYS_execveat, dirfd, path, argv, envp, flags);
    err = r < 0 ? errno : 0;
    return 127;
  });
  EXPECT_THAT(pid, SyscallSucceeds());
  const int status = WaitForStatus(pid);
  if (err == 0) {
    EXPECT_TRUE(WIFEXITED(status)) << std::hex << status;
  }
  return err;
}

TEST_F(ExecTest, Errors) {
  char* argv[] = {const_cast<char*>("x"), nullptr};
  char* envp[] = {nullptr};
  EXPECT_EQ(ExecErrno("/no/such/file", argv, envp), ENOENT);
  EXPECT_EQ(ExecErrno("", argv, envp), ENOENT);
  EXPECT_EQ(ExecErrno("/", argv, envp), EACCES);
  // A regular file without execute permission (the build makes every
  // file it produces executable, so take a system one), and a device.
  EXPECT_EQ(ExecErrno("/etc/passwd", argv, envp), EACCES);
  EXPECT_EQ(ExecErrno("/dev/null", argv, envp), EACCES);
  EXPECT_EQ(ExecErrno((TestData("garbage") + "/x").c_str(), argv, envp),
            ENOTDIR);
  EXPECT_EQ(ExecErrno(TestData("garbage").c_str(), argv, envp), ENOEXEC);
  EXPECT_EQ(ExecErrno(reinterpret_cast<const char*>(8), argv, envp), EFAULT);
  EXPECT_EQ(ExecErrno(HelperPath().c_str(),
                      reinterpret_cast<char* const*>(8), envp),
            EFAULT);
  char* bad_argv[] = {const_cast<char*>("x"), reinterpret_cast<char*>(8),
                      nullptr};
  EXPECT_EQ(ExecErrno(HelperPath().c_str(), bad_argv, envp), EFAULT);
}

// An execve that fails after it has looked at the file (here: not ELF, and
// no `#!`) returns to the same program with its registers intact, the
// vector registers included.
TEST_F(ExecTest, FailedExecKeepsVectorRegisters) {
  const std::string path = TestData("garbage");
  char* argv[] = {const_cast<char*>("x"), nullptr};
  char* envp[] = {nullptr};
  alignas(16) uint64_t in[2] = {0x0123456789abcdefULL, 0xfedcba9876543210ULL};
  alignas(16) uint64_t out[2] = {};
  long ret;
  asm volatile(
      "movdqa (%[in]), %%xmm7\n"
      "syscall\n"
      "movdqa %%xmm7, (%[out])\n"
      : "=a"(ret)
      : "a"(SYS_execve), "D"(path.c_str()), "S"(argv), "d"(envp),
        [in] "r"(in), [out] "r"(out)
      : "rcx", "r11", "memory", "xmm7");
  EXPECT_EQ(ret, -ENOEXEC);
  EXPECT_EQ(out[0], in[0]);
  EXPECT_EQ(out[1], in[1]);
}

TEST_F(ExecTest, OverlongArgumentIsE2big) {
  // MAX_ARG_STRLEN is 32 pages, terminator included.
  std::string big(32 * 4096, 'x');
  char* argv[] = {const_cast<char*>("x"), big.data(), nullptr};
  char* envp[] = {nullptr};
  EXPECT_EQ(ExecErrno(HelperPath().c_str(), argv, envp), E2BIG);
}

TEST_F(ExecTest, ExecveatWithDirfdCwd) {
  HelperSpec spec;
  const std::string path = HelperPath();
  char check[] = "PV_CHECK=argc=1";
  char* envp[] = {check, nullptr};
  char* argv[] = {const_cast<char*>(path.c_str()), nullptr};
  EXPECT_EQ(ExecErrno(path.c_str(), argv, envp, AT_FDCWD, 0), 0);
  EXPECT_EQ(ExecErrno(path.c_str(), argv, envp, AT_FDCWD, 1), EINVAL);
  // An empty path needs AT_EMPTY_PATH.
  EXPECT_EQ(ExecErrno("", argv, envp, AT_FDCWD, 0), ENOENT);
}

TEST_F(ExecTest, ExecveatSymlinkNofollow) {
  // Runfiles are symbolic links when Bazel runs the test.
  const std::string path = TestData("script_plain");
  struct stat st;
  SKIP_IF(lstat(path.c_str(), &st) != 0 || !S_ISLNK(st.st_mode));
  char* argv[] = {const_cast<char*>("x"), nullptr};
  char* envp[] = {nullptr};
  EXPECT_EQ(ExecErrno(path.c_str(), argv, envp, AT_FDCWD, AT_SYMLINK_NOFOLLOW),
            ELOOP);
}

TEST_F(ExecTest, ScriptGetsItsPathAfterTheInterpreter) {
  HelperSpec spec;
  spec.path = TestData("script_plain");
  spec.argv = {"ignored", "extra"};
  // The interpreter's name replaces argv[0]; the script's path comes next.
  spec.checks = {"argc=3", "argv[0]=test/syscalls/proc_helper",
                 "argv[1]=" + spec.path, "argv[2]=extra",
                 "execfn=" + spec.path, "comm=script_plain"};
  EXPECT_EQ(RunHelper(spec), 0);
}

TEST_F(ExecTest, ScriptArgumentIsOneString) {
  HelperSpec spec;
  spec.path = TestData("script_arg");
  spec.argv = {"ignored"};
  // Everything after the interpreter, trailing blanks removed.
  spec.checks = {"argc=3", "argv[1]=one  two", "argv[2]=" + spec.path};
  EXPECT_EQ(RunHelper(spec), 0);
}

TEST_F(ExecTest, ScriptArgumentMayBeTruncated) {
  HelperSpec spec;
  spec.path = TestData("script_longarg");
  spec.argv = {"ignored"};
  // Linux looks at 256 bytes, the last one excluded.
  const size_t prefix = strlen("#!test/syscalls/proc_helper ");
  spec.checks = {"argc=3", "argv[1]=" + std::string(255 - prefix, 'a')};
  EXPECT_EQ(RunHelper(spec), 0);
}

TEST_F(ExecTest, NestedScripts) {
  HelperSpec spec;
  spec.path = TestData("script_d5");
  spec.argv = {"ignored", "last"};
  spec.checks = {"argc=7",
                 "argv[1]=" + TestData("script_d1"),
                 "argv[2]=" + TestData("script_d2"),
                 "argv[5]=" + TestData("script_d5"),
                 "argv[6]=last"};
  EXPECT_EQ(RunHelper(spec), 0);
}

TEST_F(ExecTest, ScriptErrors) {
  char* argv[] = {const_cast<char*>("x"), nullptr};
  char* envp[] = {nullptr};
  // Too many interpreters.
  EXPECT_EQ(ExecErrno(TestData("script_d6").c_str(), argv, envp), ELOOP);
  EXPECT_EQ(ExecErrno(TestData("script_noname").c_str(), argv, envp), ENOEXEC);
  EXPECT_EQ(ExecErrno(TestData("script_missing").c_str(), argv, envp), ENOENT);
  // An interpreter name that does not end in the first 255 bytes could be
  // cut short.
  EXPECT_EQ(ExecErrno(TestData("script_longname").c_str(), argv, envp),
            ENOEXEC);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
