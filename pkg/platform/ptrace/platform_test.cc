// Tests of the ptrace platform core against real stub processes.

#include "pkg/platform/ptrace/platform.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pkg/platform/ptrace/address_space.h"
#include "pkg/platform/ptrace/context.h"
#include "pkg/platform/ptrace/error.h"

namespace pyvisor::ptrace_platform {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kPage = 4096;

// Where the tests map their pages in the stub.
constexpr uint64_t kCodeAddr = 0x10000;
constexpr uint64_t kDataAddr = 0x200000;
constexpr uint64_t kReadOnlyAddr = 0x300000;

// Offsets of the pages in the memory file.
constexpr uint64_t kCodeOffset = 0;
constexpr uint64_t kDataOffset = kPage;
constexpr uint64_t kDataValue = 0x0123456789abcdef;

// Machine code. Each program starts at the start of the code page.
//   mov $39,%eax; syscall; mov %rax,%rdi; mov $39,%eax; syscall
const std::vector<uint8_t> kTwoSyscalls = {0xb8, 0x27, 0x00, 0x00, 0x00, 0x0f,
                                           0x05, 0x48, 0x89, 0xc7, 0xb8, 0x27,
                                           0x00, 0x00, 0x00, 0x0f, 0x05};
//   mov 0x200000,%rax; mov %rax,%rdi; mov $39,%eax; syscall
const std::vector<uint8_t> kReadData = {0x48, 0x8b, 0x04, 0x25, 0x00, 0x00,
                                        0x20, 0x00, 0x48, 0x89, 0xc7, 0xb8,
                                        0x27, 0x00, 0x00, 0x00, 0x0f, 0x05};
//   mov %rax,0x300000
const std::vector<uint8_t> kWriteReadOnly = {0x48, 0x89, 0x04, 0x25,
                                             0x00, 0x00, 0x30, 0x00};
//   ud2
const std::vector<uint8_t> kUd2 = {0x0f, 0x0b};
//   int3
const std::vector<uint8_t> kInt3 = {0xcc};
//   mov $39,%eax; syscall; 1: jmp 1b
const std::vector<uint8_t> kSyscallThenSpin = {0xb8, 0x27, 0x00, 0x00, 0x00,
                                               0x0f, 0x05, 0xeb, 0xfe};
//   movq %xmm0,%rdi; mov $39,%eax; syscall
const std::vector<uint8_t> kXmm0ToRdi = {0x66, 0x48, 0x0f, 0x7e, 0xc7, 0xb8,
                                         0x27, 0x00, 0x00, 0x00, 0x0f, 0x05};
//   1: mov $39,%eax; syscall; jmp 1b
const std::vector<uint8_t> kSyscallLoop = {0xb8, 0x27, 0x00, 0x00, 0x00,
                                           0x0f, 0x05, 0xeb, 0xf7};

// Offsets in the XSAVE area (the legacy FXSAVE region and the header).
constexpr size_t kXmm0Offset = 160;
constexpr size_t kXstateBvOffset = 512;

// State is a state buffer as pkg/platform/platform.py lays it out.
class State {
 public:
  explicit State(const Platform& platform)
      : buf_(kFpstateOffset + platform.fpstate_size()) {}

  uint8_t* data() { return buf_.data(); }
  size_t size() const { return buf_.size(); }
  user_regs_struct* regs() {
    return reinterpret_cast<user_regs_struct*>(buf_.data());
  }
  const siginfo_t* siginfo() {
    return reinterpret_cast<const siginfo_t*>(buf_.data() + kSiginfoOffset);
  }
  uint8_t* fpstate() { return buf_.data() + kFpstateOffset; }

  // InitUser sets a fresh 64-bit user state starting at rip.
  void InitUser(uint64_t rip) {
    memset(buf_.data(), 0, kRegsSize);
    regs()->rip = rip;
    regs()->cs = 0x33;
    regs()->ss = 0x2b;
    regs()->eflags = 0x202;
    regs()->orig_rax = ~0ull;
  }

 private:
  std::vector<uint8_t> buf_;
};

// ProcessExists reports whether /proc has pid (a zombie counts).
bool ProcessExists(pid_t pid) {
  return access(("/proc/" + std::to_string(pid)).c_str(), F_OK) == 0;
}

// ThreadExists reports whether tid is a thread of process tgid.
bool ThreadExists(pid_t tgid, pid_t tid) {
  std::string path =
      "/proc/" + std::to_string(tgid) + "/task/" + std::to_string(tid);
  return access(path.c_str(), F_OK) == 0;
}

// ThreadState returns the state letter of /proc/<tid>/stat, or 0.
char ThreadState(pid_t tid) {
  std::ifstream stat("/proc/" + std::to_string(tid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return 0;
  size_t paren = line.rfind(')');
  if (paren == std::string::npos || paren + 2 >= line.size()) return 0;
  return line[paren + 2];
}

// ChildrenOf returns the pids of the processes whose parent is pid.
std::vector<pid_t> ChildrenOf(pid_t pid) {
  std::vector<pid_t> children;
  DIR* dir = opendir("/proc");
  if (dir == nullptr) return children;
  while (struct dirent* entry = readdir(dir)) {
    char* end;
    long child = strtol(entry->d_name, &end, 10);
    if (*end != '\0' || child <= 0) continue;
    std::ifstream stat(std::string("/proc/") + entry->d_name + "/stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    size_t paren = line.rfind(')');
    if (paren == std::string::npos) continue;
    std::istringstream rest(line.substr(paren + 2));
    char state;
    pid_t ppid;
    rest >> state >> ppid;
    if (ppid == pid) children.push_back(static_cast<pid_t>(child));
  }
  closedir(dir);
  return children;
}

// MapsOf returns the lines of /proc/<pid>/maps.
std::vector<std::string> MapsOf(pid_t pid) {
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  std::vector<std::string> lines;
  for (std::string line; std::getline(maps, line);) lines.push_back(line);
  return lines;
}

class PlatformTest : public ::testing::Test {
 protected:
  void SetUp() override {
    memfd_ = memfd_create("platform_test", MFD_CLOEXEC);
    ASSERT_GE(memfd_, 0);
    ASSERT_EQ(ftruncate(memfd_, 16 * kPage), 0);
    ASSERT_EQ(pwrite(memfd_, &kDataValue, sizeof(kDataValue), kDataOffset),
              static_cast<ssize_t>(sizeof(kDataValue)));
    platform_ = Platform::Create(memfd_);
  }

  void TearDown() override {
    platform_->Close();
    platform_.reset();
    close(memfd_);
  }

  // LoadCode writes code at the start of the code page of the memory file
  // and returns an address space with the code page mapped R+X.
  std::shared_ptr<AddressSpace> SpaceWithCode(
      const std::vector<uint8_t>& code) {
    EXPECT_EQ(pwrite(memfd_, code.data(), code.size(), kCodeOffset),
              static_cast<ssize_t>(code.size()));
    std::shared_ptr<AddressSpace> as = platform_->NewAddressSpace();
    as->MapFile(kCodeAddr, kPage, kCodeOffset, PROT_READ | PROT_EXEC, false);
    return as;
  }

  int memfd_ = -1;
  std::shared_ptr<Platform> platform_;
};

TEST_F(PlatformTest, Properties) {
  EXPECT_GE(platform_->min_user_address(), kPage);
  EXPECT_EQ(platform_->max_user_address() % kPage, 0u);
  EXPECT_LT(platform_->max_user_address(), kTaskSize);
  // The legacy FXSAVE area is 512 bytes; XSAVE adds at least its header.
  EXPECT_GE(platform_->fpstate_size(), 512u);
  EXPECT_GT(platform_->master_pid(), 0);
}

TEST_F(PlatformTest, SyscallRoundTrip) {
  auto as = SpaceWithCode(kTwoSyscalls);
  auto context = platform_->NewContext();
  State state(*platform_);
  state.InitUser(kCodeAddr);

  ASSERT_EQ(context->Switch(*as, state.data(), state.size(), 0), kEventSyscall);
  EXPECT_EQ(state.regs()->orig_rax, 39u);
  EXPECT_EQ(state.regs()->rip, kCodeAddr + 7);

  state.regs()->rax = 1234;
  ASSERT_EQ(context->Switch(*as, state.data(), state.size(), 0), kEventSyscall);
  EXPECT_EQ(state.regs()->orig_rax, 39u);
  EXPECT_EQ(state.regs()->rip, kCodeAddr + 17);
  EXPECT_EQ(state.regs()->rdi, 1234u);

  pid_t tid = context->stub_tid();
  context->Release();
  EXPECT_EQ(context->stub_tid(), 0);
  EXPECT_FALSE(ThreadExists(as->pid(), tid));
}

TEST_F(PlatformTest, FaultThenMapAndResume) {
  auto as = SpaceWithCode(kReadData);
  auto context = platform_->NewContext();
  State state(*platform_);
  state.InitUser(kCodeAddr);

  ASSERT_EQ(context->Switch(*as, state.data(), state.size(), 0), kEventFault);
  EXPECT_EQ(state.siginfo()->si_signo, SIGSEGV);
  EXPECT_EQ(state.siginfo()->si_code, SEGV_MAPERR);
  EXPECT_EQ(reinterpret_cast<uint64_t>(state.siginfo()->si_addr), kDataAddr);
  EXPECT_EQ(state.regs()->rip, kCodeAddr);

  // From the tracer thread: injected into its own stub thread.
  as->MapFile(kDataAddr, kPage, kDataOffset, PROT_READ, false);
  ASSERT_EQ(context->Switch(*as, state.data(), state.size(), 0), kEventSyscall);
  EXPECT_EQ(state.regs()->rdi, kDataValue);
  context->Release();
}

TEST_F(PlatformTest, WriteToReadOnlyMappingIsAccessFault) {
  auto as = SpaceWithCode(kWriteReadOnly);
  as->MapFile(kReadOnlyAddr, kPage, kDataOffset, PROT_READ, true);
  auto context = platform_->NewContext();
  State state(*platform_);
  state.InitUser(kCodeAddr);

  ASSERT_EQ(context->Switch(*as, state.data(), state.size(), 0), kEventFault);
  EXPECT_EQ(state.siginfo()->si_signo, SIGSEGV);
  EXPECT_EQ(state.siginfo()->si_code, SEGV_ACCERR);
  EXPECT_EQ(reinterpret_cast<uint64_t>(state.siginfo()->si_addr),
            kReadOnlyAddr);
  context->Release();
}

TEST_F(PlatformTest, Ud2IsSigill) {
  auto as = SpaceWithCode(kUd2);
  auto context = platform_->NewContext();
  State state(*platform_);
  state.InitUser(kCodeAddr);

  ASSERT_EQ(context->Switch(*as, state.data(), state.size(), 0), kEventSignal);
  EXPECT_EQ(state.siginfo()->si_signo, SIGILL);
  EXPECT_EQ(state.regs()->rip, kCodeAddr);
  context->Release();
}

TEST_F(PlatformTest, Int3IsSigtrap) {
  auto as = SpaceWithCode(kInt3);
  auto context = platform_->NewContext();
  State state(*platform_);
  state.InitUser(kCodeAddr);

  ASSERT_EQ(context->Switch(*as, state.data(), state.size(), 0), kEventSignal);
  EXPECT_EQ(state.siginfo()->si_signo, SIGTRAP);
  EXPECT_EQ(state.regs()->rip, kCodeAddr + 1);
  context->Release();
}

TEST_F(PlatformTest, InterruptFromAnotherThreadStopsSpinningCode) {
  auto as = SpaceWithCode(kSyscallThenSpin);
  auto context = platform_->NewContext();
  State state(*platform_);
  state.InitUser(kCodeAddr);
  ASSERT_EQ(context->Switch(*as, state.data(), state.size(), 0), kEventSyscall);
  pid_t tid = context->stub_tid();

  // Interrupt once the stub thread is seen running the loop.
  std::atomic<bool> done{false};
  std::chrono::steady_clock::time_point sent;
  std::thread interrupter([&] {
    while (!done.load() && ThreadState(tid) != 'R') sched_yield();
    sent = std::chrono::steady_clock::now();
    context->Interrupt();
  });
  int kind = context->Switch(*as, state.data(), state.size(), 0);
  auto returned = std::chrono::steady_clock::now();
  done.store(true);
  interrupter.join();

  EXPECT_EQ(kind, kEventInterrupt);
  EXPECT_EQ(state.regs()->rip, kCodeAddr + 7);
  EXPECT_LT(returned - sent, std::chrono::milliseconds(500));
  context->Release();
}

TEST_F(PlatformTest, InterruptBeforeSwitchReturnsAtOnce) {
  auto as = SpaceWithCode(kTwoSyscalls);
  auto context = platform_->NewContext();
  State state(*platform_);
  state.InitUser(kCodeAddr);

  context->Interrupt();
  ASSERT_EQ(context->Switch(*as, state.data(), state.size(), 0),
            kEventInterrupt);
  EXPECT_EQ(state.regs()->rip, kCodeAddr);

  // The interrupt was consumed.
  ASSERT_EQ(context->Switch(*as, state.data(), state.size(), 0), kEventSyscall);
  EXPECT_EQ(state.regs()->rip, kCodeAddr + 7);
  context->Release();
}

TEST_F(PlatformTest, TwoThreadsRunInOneAddressSpace) {
  auto as = SpaceWithCode(kSyscallLoop);
  constexpr int kSyscalls = 200;
  pid_t tids[2] = {};
  int counts[2] = {};
  auto run = [&](int i) {
    auto context = platform_->NewContext();
    State state(*platform_);
    state.InitUser(kCodeAddr);
    for (int n = 0; n < kSyscalls; ++n) {
      if (context->Switch(*as, state.data(), state.size(), 0) !=
              kEventSyscall ||
          state.regs()->orig_rax != 39) {
        break;
      }
      tids[i] = context->stub_tid();
      ++counts[i];
    }
    context->Release();
  };
  std::thread first(run, 0);
  std::thread second(run, 1);
  first.join();
  second.join();

  EXPECT_EQ(counts[0], kSyscalls);
  EXPECT_EQ(counts[1], kSyscalls);
  EXPECT_NE(tids[0], tids[1]);
  EXPECT_NE(tids[0], 0);
  // Both contexts released their stub threads; the process lives on.
  EXPECT_FALSE(ThreadExists(as->pid(), tids[0]));
  EXPECT_FALSE(ThreadExists(as->pid(), tids[1]));
  EXPECT_TRUE(ProcessExists(as->pid()));
}

TEST_F(PlatformTest, MapFileFromAnotherThreadGoesThroughPlatformThread) {
  auto as = SpaceWithCode(kReadData);
  auto context = platform_->NewContext();
  State state(*platform_);
  state.InitUser(kCodeAddr);
  ASSERT_EQ(context->Switch(*as, state.data(), state.size(), 0), kEventFault);

  // This thread has no stub thread in the address space.
  std::thread mapper(
      [&] { as->MapFile(kDataAddr, kPage, kDataOffset, PROT_READ, false); });
  mapper.join();

  ASSERT_EQ(context->Switch(*as, state.data(), state.size(), 0), kEventSyscall);
  EXPECT_EQ(state.regs()->rdi, kDataValue);

  // Unmap from the tracer thread: the same read faults again.
  as->Unmap(kDataAddr, kPage);
  state.InitUser(kCodeAddr);
  ASSERT_EQ(context->Switch(*as, state.data(), state.size(), 0), kEventFault);
  context->Release();
}

TEST_F(PlatformTest, ProtectChangesAccess) {
  auto as = SpaceWithCode(kWriteReadOnly);
  as->MapFile(kReadOnlyAddr, kPage, kDataOffset, PROT_READ, false);
  auto context = platform_->NewContext();
  State state(*platform_);
  state.InitUser(kCodeAddr);
  ASSERT_EQ(context->Switch(*as, state.data(), state.size(), 0), kEventFault);

  as->Protect(kReadOnlyAddr, kPage, PROT_READ | PROT_WRITE);
  state.regs()->rax = 42;
  // The write succeeds; the next instruction (zeros: add %al,(%rax)) faults
  // at address 42.
  ASSERT_EQ(context->Switch(*as, state.data(), state.size(), 0), kEventFault);
  EXPECT_EQ(reinterpret_cast<uint64_t>(state.siginfo()->si_addr), 42u);
  uint64_t written = 0;
  ASSERT_EQ(pread(memfd_, &written, sizeof(written), kDataOffset),
            static_cast<ssize_t>(sizeof(written)));
  EXPECT_EQ(written, 42u);
  context->Release();
}

TEST_F(PlatformTest, FpstateRoundTrip) {
  auto as = SpaceWithCode(kXmm0ToRdi);
  auto context = platform_->NewContext();
  State state(*platform_);
  state.InitUser(kCodeAddr);
  ASSERT_EQ(context->Switch(*as, state.data(), state.size(), 0), kEventSyscall);

  // A valid XSAVE image from the stub thread, with XMM0 changed.
  context->PullFpstate(state.data(), state.size());
  constexpr uint64_t kValue = 0x1122334455667788;
  memcpy(state.fpstate() + kXmm0Offset, &kValue, sizeof(kValue));
  if (platform_->fpstate_size() > kXstateBvOffset) {
    uint64_t xstate_bv;
    memcpy(&xstate_bv, state.fpstate() + kXstateBvOffset, sizeof(xstate_bv));
    xstate_bv |= 2;  // SSE state present
    memcpy(state.fpstate() + kXstateBvOffset, &xstate_bv, sizeof(xstate_bv));
  }

  state.InitUser(kCodeAddr);
  ASSERT_EQ(context->Switch(*as, state.data(), state.size(), kSwitchSetFpstate),
            kEventSyscall);
  EXPECT_EQ(state.regs()->rdi, kValue);

  memset(state.fpstate(), 0, platform_->fpstate_size());
  context->PullFpstate(state.data(), state.size());
  uint64_t xmm0;
  memcpy(&xmm0, state.fpstate() + kXmm0Offset, sizeof(xmm0));
  EXPECT_EQ(xmm0, kValue);
  context->Release();
}

TEST_F(PlatformTest, StubsHoldOnlyTheStubPage) {
  auto as = SpaceWithCode({});
  char expected[64];
  snprintf(expected, sizeof(expected), "%lx-%lx ",
           static_cast<unsigned long>(platform_->max_user_address()),
           static_cast<unsigned long>(platform_->max_user_address() + kPage));
  for (pid_t pid : {platform_->master_pid(), as->pid()}) {
    std::vector<std::string> maps = MapsOf(pid);
    ASSERT_FALSE(maps.empty());
    for (const std::string& line : maps) {
      if (line.find("[vsyscall]") != std::string::npos) continue;
      // The address space has the test's code page too.
      if (pid == as->pid() && line.rfind("00010000-00011000 ", 0) == 0)
        continue;
      EXPECT_EQ(line.rfind(expected, 0), 0u) << line;
    }
  }
}

TEST_F(PlatformTest, ReleaseLeavesNoProcess) {
  auto as = SpaceWithCode(kTwoSyscalls);
  auto context = platform_->NewContext();
  State state(*platform_);
  state.InitUser(kCodeAddr);
  ASSERT_EQ(context->Switch(*as, state.data(), state.size(), 0), kEventSyscall);
  pid_t pid = as->pid();
  pid_t control = as->control_tid();
  pid_t tid = context->stub_tid();
  // The master's other child, if any, is the spare (ready) address space.
  EXPECT_THAT(ChildrenOf(platform_->master_pid()), ::testing::Contains(pid));

  context->Release();
  as->Release();
  EXPECT_FALSE(ProcessExists(tid));
  EXPECT_FALSE(ProcessExists(control));
  EXPECT_FALSE(ProcessExists(pid));
  EXPECT_THAT(ChildrenOf(platform_->master_pid()),
              ::testing::Not(::testing::Contains(pid)));
  EXPECT_THAT(ChildrenOf(getpid()),
              ::testing::ElementsAre(platform_->master_pid()));
}

TEST(PlatformSparesTest, NoSparesMeansOneProcessPerAddressSpace) {
  int memfd = memfd_create("platform_test", MFD_CLOEXEC);
  ASSERT_GE(memfd, 0);
  PlatformOptions options;
  options.spare_address_spaces = 0;
  std::shared_ptr<Platform> platform = Platform::Create(memfd, options);
  auto as = platform->NewAddressSpace();
  EXPECT_THAT(ChildrenOf(platform->master_pid()),
              ::testing::ElementsAre(as->pid()));
  as->Release();
  EXPECT_THAT(ChildrenOf(platform->master_pid()), ::testing::IsEmpty());
  platform->Close();
  close(memfd);
}

TEST(PlatformSparesTest, SparesAreMadeAheadAndDieWithThePlatform) {
  int memfd = memfd_create("platform_test", MFD_CLOEXEC);
  ASSERT_GE(memfd, 0);
  PlatformOptions options;
  options.spare_address_spaces = 2;
  std::shared_ptr<Platform> platform = Platform::Create(memfd, options);
  pid_t master = platform->master_pid();
  // Made while the platform thread is idle: wait for both.
  std::vector<pid_t> spares;
  for (int i = 0; i < 2000 && spares.size() < 2; ++i) {
    usleep(1000);
    spares = ChildrenOf(master);
  }
  ASSERT_EQ(spares.size(), 2u);
  // A new address space is one of them, and is replaced.
  auto as = platform->NewAddressSpace();
  EXPECT_THAT(spares, ::testing::Contains(as->pid()));
  std::vector<pid_t> now;
  for (int i = 0; i < 2000 && now.size() < 3; ++i) {
    usleep(1000);
    now = ChildrenOf(master);
  }
  EXPECT_EQ(now.size(), 3u);
  platform->Close();
  for (pid_t pid : now) EXPECT_FALSE(ProcessExists(pid));
  EXPECT_FALSE(ProcessExists(master));
  close(memfd);
}

TEST_F(PlatformTest, ReleasedAddressSpaceKillsIdleStubThreads) {
  auto as = SpaceWithCode(kTwoSyscalls);
  auto context = platform_->NewContext();
  State state(*platform_);
  state.InitUser(kCodeAddr);
  ASSERT_EQ(context->Switch(*as, state.data(), state.size(), 0), kEventSyscall);
  pid_t pid = as->pid();
  pid_t tid = context->stub_tid();

  // The context still holds its stub thread: the release reaps it.
  as->Release();
  EXPECT_FALSE(ProcessExists(tid));
  EXPECT_FALSE(ProcessExists(pid));
  EXPECT_EQ(context->stub_tid(), 0);

  EXPECT_EQ(context->Switch(*as, state.data(), state.size(), 0), kEventDied);
  try {
    as->MapFile(kDataAddr, kPage, kDataOffset, PROT_READ, false);
    ADD_FAILURE() << "MapFile after Release succeeded";
  } catch (const PtraceError& e) {
    EXPECT_EQ(e.err(), ESRCH);
  }
  context->Release();
}

TEST_F(PlatformTest, KilledStubIsDied) {
  auto as = SpaceWithCode(kSyscallThenSpin);
  auto context = platform_->NewContext();
  State state(*platform_);
  state.InitUser(kCodeAddr);
  ASSERT_EQ(context->Switch(*as, state.data(), state.size(), 0), kEventSyscall);

  // Killed from outside while running.
  pid_t pid = as->pid();
  pid_t tid = context->stub_tid();
  std::thread killer([&] {
    while (ThreadState(tid) != 'R') sched_yield();
    kill(pid, SIGKILL);
  });
  EXPECT_EQ(context->Switch(*as, state.data(), state.size(), 0), kEventDied);
  killer.join();
  EXPECT_EQ(context->stub_tid(), 0);
  as->Release();
  EXPECT_FALSE(ProcessExists(pid));
}

TEST_F(PlatformTest, SignalFromAnotherProcessIsIgnored) {
  auto as = SpaceWithCode(kSyscallThenSpin);
  auto context = platform_->NewContext();
  State state(*platform_);
  state.InitUser(kCodeAddr);
  ASSERT_EQ(context->Switch(*as, state.data(), state.size(), 0), kEventSyscall);
  pid_t tid = context->stub_tid();
  pid_t pid = as->pid();

  // A forked process sends SIGUSR1; then this thread interrupts.
  std::thread sender([&] {
    while (ThreadState(tid) != 'R') sched_yield();
    pid_t child = fork();
    if (child == 0) {
      syscall(SYS_tgkill, pid, tid, SIGUSR1);
      _exit(0);
    }
    int status;
    waitpid(child, &status, 0);
    while (ThreadState(tid) != 'R') sched_yield();
    context->Interrupt();
  });
  EXPECT_EQ(context->Switch(*as, state.data(), state.size(), 0),
            kEventInterrupt);
  sender.join();
  EXPECT_TRUE(ThreadExists(pid, tid));
  context->Release();
}

TEST_F(PlatformTest, HostDoesNotRestartSystemCalls) {
  auto as = SpaceWithCode(kTwoSyscalls);
  auto context = platform_->NewContext();
  State state(*platform_);
  state.InitUser(kCodeAddr);
  ASSERT_EQ(context->Switch(*as, state.data(), state.size(), 0), kEventSyscall);
  pid_t tid = context->stub_tid();
  pid_t pid = as->pid();

  // A signal is pending when the thread resumes with -ERESTARTSYS in rax:
  // the host would rewind rip onto the system call if orig_rax said the
  // thread was in one.
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) _exit(syscall(SYS_tgkill, pid, tid, SIGUSR1) == 0 ? 0 : 1);
  int status;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

  state.regs()->rax = static_cast<uint64_t>(-512);
  ASSERT_EQ(context->Switch(*as, state.data(), state.size(), 0), kEventSyscall);
  EXPECT_EQ(state.regs()->rip, kCodeAddr + 17);
  EXPECT_EQ(state.regs()->rdi, static_cast<uint64_t>(-512));
  context->Release();
}

TEST_F(PlatformTest, SwitchToAnotherAddressSpaceEndsTheOldStubThread) {
  auto first = SpaceWithCode(kTwoSyscalls);
  auto second = SpaceWithCode(kTwoSyscalls);
  auto context = platform_->NewContext();
  State state(*platform_);
  state.InitUser(kCodeAddr);
  ASSERT_EQ(context->Switch(*first, state.data(), state.size(), 0),
            kEventSyscall);
  pid_t old_tid = context->stub_tid();

  state.InitUser(kCodeAddr);
  ASSERT_EQ(context->Switch(*second, state.data(), state.size(), 0),
            kEventSyscall);
  EXPECT_FALSE(ThreadExists(first->pid(), old_tid));
  EXPECT_TRUE(ThreadExists(second->pid(), context->stub_tid()));
  EXPECT_TRUE(ProcessExists(first->pid()));
  context->Release();
}

TEST_F(PlatformTest, ContextIsTiedToItsTracerThread) {
  auto as = SpaceWithCode(kTwoSyscalls);
  auto context = platform_->NewContext();
  State state(*platform_);
  state.InitUser(kCodeAddr);
  ASSERT_EQ(context->Switch(*as, state.data(), state.size(), 0), kEventSyscall);

  int err = 0;
  std::thread other([&] {
    try {
      context->Switch(*as, state.data(), state.size(), 0);
    } catch (const PtraceError& e) {
      err = e.err();
    }
  });
  other.join();
  EXPECT_EQ(err, EPERM);
  context->Release();
}

TEST_F(PlatformTest, MapOutsideUserRangeIsRejected) {
  auto as = platform_->NewAddressSpace();
  uint64_t max = platform_->max_user_address();
  uint64_t min = platform_->min_user_address();
  struct Case {
    uint64_t addr;
    uint64_t length;
    uint64_t offset;
  };
  for (const Case& c :
       {Case{0, kPage, 0}, Case{min - kPage, kPage, 0}, Case{max, kPage, 0},
        Case{max - kPage, 2 * kPage, 0}, Case{kCodeAddr + 1, kPage, 0},
        Case{kCodeAddr, kPage + 1, 0}, Case{kCodeAddr, 0, 0},
        Case{kCodeAddr, kPage, 1}, Case{kCodeAddr, ~0ull - kPage + 1, 0}}) {
    try {
      as->MapFile(c.addr, c.length, c.offset, PROT_READ, false);
      ADD_FAILURE() << std::hex << c.addr << " " << c.length;
    } catch (const PtraceError& e) {
      EXPECT_EQ(e.err(), EINVAL);
    }
  }
  // The highest allowed page is fine.
  as->MapFile(max - kPage, kPage, 0, PROT_READ, false);
}

TEST_F(PlatformTest, ErrorsCarryErrnoAndOperation) {
  auto as = platform_->NewAddressSpace();
  try {
    // Nothing is mapped there.
    as->Protect(kDataAddr, kPage, PROT_READ);
    ADD_FAILURE() << "mprotect of nothing succeeded";
  } catch (const PtraceError& e) {
    EXPECT_EQ(e.err(), ENOMEM);
    EXPECT_THAT(e.what(), HasSubstr("mprotect"));
  }
}

TEST_F(PlatformTest, CloseKillsEveryStub) {
  auto as = SpaceWithCode(kTwoSyscalls);
  auto context = platform_->NewContext();
  State state(*platform_);
  state.InitUser(kCodeAddr);
  ASSERT_EQ(context->Switch(*as, state.data(), state.size(), 0), kEventSyscall);
  pid_t master = platform_->master_pid();
  pid_t pid = as->pid();

  // The context is not released: Close reaps its stub thread too.
  platform_->Close();
  EXPECT_FALSE(ProcessExists(master));
  EXPECT_FALSE(ProcessExists(pid));
  EXPECT_THAT(ChildrenOf(getpid()), ::testing::IsEmpty());
  EXPECT_EQ(context->stub_tid(), 0);
  EXPECT_EQ(context->Switch(*as, state.data(), state.size(), 0), kEventDied);
  try {
    platform_->NewAddressSpace();
    ADD_FAILURE() << "NewAddressSpace after Close succeeded";
  } catch (const PtraceError& e) {
    EXPECT_EQ(e.err(), EBADF);
  }
}

TEST_F(PlatformTest, ForkedChildLeavesTheStubsAlone) {
  auto as = SpaceWithCode(kTwoSyscalls);
  auto context = platform_->NewContext();
  State state(*platform_);
  state.InitUser(kCodeAddr);
  ASSERT_EQ(context->Switch(*as, state.data(), state.size(), 0), kEventSyscall);

  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // What a forked sentry's finalizers would do.
    as->Release();
    platform_->Close();
    _exit(0);
  }
  int status;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;

  EXPECT_TRUE(ProcessExists(as->pid()));
  EXPECT_EQ(context->Switch(*as, state.data(), state.size(), 0), kEventSyscall);
  context->Release();
}

// The stubs die when the sentry dies without closing the platform.
TEST(PlatformDeathTest, StubsDieWithTheSentry) {
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  pid_t sentry = fork();
  ASSERT_GE(sentry, 0);
  if (sentry == 0) {
    int memfd = memfd_create("sentry", 0);
    std::shared_ptr<Platform> platform = Platform::Create(memfd);
    auto as = platform->NewAddressSpace();
    pid_t pids[2] = {platform->master_pid(), as->pid()};
    _exit(write(pipefd[1], pids, sizeof(pids)) == sizeof(pids) ? 0 : 1);
  }
  close(pipefd[1]);
  pid_t pids[2] = {};
  ASSERT_EQ(read(pipefd[0], pids, sizeof(pids)),
            static_cast<ssize_t>(sizeof(pids)));
  close(pipefd[0]);
  int status;
  ASSERT_EQ(waitpid(sentry, &status, 0), sentry);

  // The stubs were orphaned; whoever reaps orphans here may be slow, so a
  // zombie counts as dead.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (pid_t pid : pids) {
    while (ProcessExists(pid) && ThreadState(pid) != 'Z' &&
           std::chrono::steady_clock::now() < deadline) {
      struct timespec ts = {0, 1000000};
      nanosleep(&ts, nullptr);
    }
    EXPECT_TRUE(!ProcessExists(pid) || ThreadState(pid) == 'Z') << pid;
  }
}

}  // namespace
}  // namespace pyvisor::ptrace_platform
