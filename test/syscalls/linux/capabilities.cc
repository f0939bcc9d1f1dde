// capget(2) and capset(2), and the capability prctl(2) options
// (PR_CAPBSET_READ, PR_CAPBSET_DROP, PR_CAP_AMBIENT, PR_GET/SET_SECUREBITS).
// Capabilities belong to a thread: changes are made in threads of their own.

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

void InThread(const std::function<void()>& fn) {
  std::thread t(fn);
  t.join();
}

struct Sets {
  uint64_t effective, permitted, inheritable;
};

Sets Get(pid_t pid = 0) {
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, pid};
  struct __user_cap_data_struct data[2] = {};
  EXPECT_THAT(syscall(SYS_capget, &hdr, data), SyscallSucceeds());
  return {data[0].effective | uint64_t{data[1].effective} << 32,
          data[0].permitted | uint64_t{data[1].permitted} << 32,
          data[0].inheritable | uint64_t{data[1].inheritable} << 32};
}

long Set(const Sets& s) {
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] = {};
  data[0].effective = s.effective;
  data[1].effective = s.effective >> 32;
  data[0].permitted = s.permitted;
  data[1].permitted = s.permitted >> 32;
  data[0].inheritable = s.inheritable;
  data[1].inheritable = s.inheritable >> 32;
  return syscall(SYS_capset, &hdr, data);
}

constexpr uint64_t Bit(int cap) { return uint64_t{1} << cap; }

TEST(CapabilitiesTest, UnknownVersionIsRewritten) {
  struct __user_cap_header_struct hdr = {0x12345678, 0};
  struct __user_cap_data_struct data[2];
  EXPECT_THAT(syscall(SYS_capget, &hdr, data), SyscallFailsWithErrno(EINVAL));
  EXPECT_EQ(hdr.version, _LINUX_CAPABILITY_VERSION_3);
  // Probing with no data pointer succeeds and still tells the version.
  hdr.version = 0;
  EXPECT_THAT(syscall(SYS_capget, &hdr, nullptr), SyscallSucceeds());
  EXPECT_EQ(hdr.version, _LINUX_CAPABILITY_VERSION_3);
  hdr.version = 0;
  EXPECT_THAT(syscall(SYS_capset, &hdr, data), SyscallFailsWithErrno(EINVAL));
}

TEST(CapabilitiesTest, Version1MovesOneWord) {
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_1, 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0xab, sizeof(data));
  ASSERT_THAT(syscall(SYS_capget, &hdr, data), SyscallSucceeds());
  EXPECT_EQ(data[0].effective, static_cast<uint32_t>(Get().effective));
  // The second word is untouched.
  EXPECT_EQ(data[1].effective, 0xababababu);
}

TEST(CapabilitiesTest, OtherTasks) {
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, -1};
  struct __user_cap_data_struct data[2];
  EXPECT_THAT(syscall(SYS_capget, &hdr, data), SyscallFailsWithErrno(EINVAL));
  hdr.pid = 0x3fffff0;
  EXPECT_THAT(syscall(SYS_capget, &hdr, data), SyscallFailsWithErrno(ESRCH));
  // capset changes only the caller.
  hdr.pid = 0;
  ASSERT_THAT(syscall(SYS_capget, &hdr, data), SyscallSucceeds());
  hdr.pid = 0x3fffff0;
  EXPECT_THAT(syscall(SYS_capset, &hdr, data), SyscallFailsWithErrno(EPERM));
  // Another thread's sets can be read by its id.
  std::atomic<pid_t> tid{0};
  std::atomic<bool> done{false};
  std::thread t([&] {
    const Sets s = Get();
    Set({0, s.permitted, s.inheritable});
    tid = syscall(SYS_gettid);
    while (!done) sched_yield();
  });
  while (tid == 0) sched_yield();
  EXPECT_EQ(Get(tid).effective, 0u);
  EXPECT_EQ(Get(tid).permitted, Get().permitted);
  done = true;
  t.join();
}

TEST(CapabilitiesTest, CapsetRules) {
  InThread([] {
    const Sets start = Get();
    // Drop one capability from the effective set, then get it back.
    ASSERT_THAT(Set({start.effective & ~Bit(CAP_CHOWN), start.permitted,
                     start.inheritable}),
                SyscallSucceeds());
    EXPECT_EQ(Get().effective, start.effective & ~Bit(CAP_CHOWN));
    ASSERT_THAT(Set(start), SyscallSucceeds());
    // Effective must be within permitted.
    EXPECT_THAT(Set({start.permitted, start.permitted & ~Bit(CAP_CHOWN),
                     start.inheritable}),
                SyscallFailsWithErrno(EPERM));
    // Drop CAP_CHOWN from permitted for good.
    ASSERT_THAT(Set({start.effective & ~Bit(CAP_CHOWN),
                     start.permitted & ~Bit(CAP_CHOWN), start.inheritable}),
                SyscallSucceeds());
    EXPECT_THAT(Set(start), SyscallFailsWithErrno(EPERM));
    // Inheritable may grow within the bounding set with CAP_SETPCAP.
    EXPECT_THAT(Set({0, start.permitted & ~Bit(CAP_CHOWN), Bit(CAP_KILL)}),
                SyscallSucceeds());
    // Without CAP_SETPCAP in effective, only within permitted.
    EXPECT_THAT(Set({0, Bit(CAP_KILL), Bit(CAP_KILL) | Bit(CAP_CHOWN)}),
                SyscallFailsWithErrno(EPERM));
  });
}

TEST(CapabilitiesTest, BoundingSet) {
  EXPECT_THAT(prctl(PR_CAPBSET_READ, CAP_CHOWN), SyscallSucceedsWithValue(1));
  EXPECT_THAT(prctl(PR_CAPBSET_READ, 64), SyscallFailsWithErrno(EINVAL));
  InThread([] {
    ASSERT_THAT(prctl(PR_CAPBSET_DROP, CAP_MKNOD), SyscallSucceeds());
    EXPECT_THAT(prctl(PR_CAPBSET_READ, CAP_MKNOD), SyscallSucceedsWithValue(0));
    EXPECT_THAT(prctl(PR_CAPBSET_DROP, 64), SyscallFailsWithErrno(EINVAL));
    // Without CAP_SETPCAP.
    const Sets s = Get();
    ASSERT_THAT(Set({s.effective & ~Bit(CAP_SETPCAP), s.permitted, 0}),
                SyscallSucceeds());
    EXPECT_THAT(prctl(PR_CAPBSET_DROP, CAP_CHOWN), SyscallFailsWithErrno(EPERM));
  });
  // Other threads keep their bounding set.
  EXPECT_THAT(prctl(PR_CAPBSET_READ, CAP_MKNOD), SyscallSucceedsWithValue(1));
}

TEST(CapabilitiesTest, AmbientSet) {
  InThread([] {
    const Sets s = Get();
    EXPECT_THAT(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_KILL, 0, 0),
                SyscallSucceedsWithValue(0));
    // Not inheritable yet: refused.
    EXPECT_THAT(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_KILL, 0, 0),
                SyscallFailsWithErrno(EPERM));
    ASSERT_THAT(Set({s.effective, s.permitted, Bit(CAP_KILL)}),
                SyscallSucceeds());
    ASSERT_THAT(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_KILL, 0, 0),
                SyscallSucceeds());
    EXPECT_THAT(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_KILL, 0, 0),
                SyscallSucceedsWithValue(1));
    // Leaving the inheritable set drops it from ambient.
    ASSERT_THAT(Set({s.effective, s.permitted, 0}), SyscallSucceeds());
    EXPECT_THAT(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_KILL, 0, 0),
                SyscallSucceedsWithValue(0));
    ASSERT_THAT(Set({s.effective, s.permitted, Bit(CAP_KILL)}),
                SyscallSucceeds());
    ASSERT_THAT(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_KILL, 0, 0),
                SyscallSucceeds());
    ASSERT_THAT(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_LOWER, CAP_KILL, 0, 0),
                SyscallSucceeds());
    EXPECT_THAT(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_KILL, 0, 0),
                SyscallSucceedsWithValue(0));
    EXPECT_THAT(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0),
                SyscallSucceeds());
    EXPECT_THAT(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 1, 0, 0),
                SyscallFailsWithErrno(EINVAL));
    EXPECT_THAT(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, 64, 0, 0),
                SyscallFailsWithErrno(EINVAL));
    EXPECT_THAT(prctl(PR_CAP_AMBIENT, 9, CAP_KILL, 0, 0),
                SyscallFailsWithErrno(EINVAL));
  });
}

TEST(CapabilitiesTest, Securebits) {
  InThread([] {
    EXPECT_THAT(prctl(PR_GET_SECUREBITS), SyscallSucceedsWithValue(0));
    ASSERT_THAT(prctl(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS), SyscallSucceeds());
    EXPECT_THAT(prctl(PR_GET_KEEPCAPS), SyscallSucceedsWithValue(1));
    EXPECT_THAT(prctl(PR_GET_SECUREBITS),
                SyscallSucceedsWithValue(SECBIT_KEEP_CAPS));
    ASSERT_THAT(prctl(PR_SET_SECUREBITS,
                      SECBIT_KEEP_CAPS | SECBIT_KEEP_CAPS_LOCKED),
                SyscallSucceeds());
    // Locked: neither securebits nor keepcaps may change it.
    EXPECT_THAT(prctl(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS_LOCKED),
                SyscallFailsWithErrno(EPERM));
    EXPECT_THAT(prctl(PR_SET_KEEPCAPS, 0), SyscallFailsWithErrno(EPERM));
    EXPECT_THAT(prctl(PR_SET_SECUREBITS, 1 << 20), SyscallFailsWithErrno(EPERM));
  });
  EXPECT_THAT(prctl(PR_GET_SECUREBITS), SyscallSucceedsWithValue(0));
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
