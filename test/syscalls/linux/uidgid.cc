// setuid(2), setreuid(2), setresuid(2), setfsuid(2), their gid twins,
// setgroups(2) and getgroups(2), run as root.
//
// Credentials belong to a thread, so each test changes them in a thread of
// its own with raw system calls (libc's wrappers would change every thread)
// and leaves the main thread as it was.

#include <errno.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <functional>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

constexpr uid_t kNobody = 65534;
constexpr uid_t kOther = 65533;

void InThread(const std::function<void()>& fn) {
  std::thread t(fn);
  t.join();
  // Whatever the thread did, the process stays dumpable for later tests.
  prctl(PR_SET_DUMPABLE, 1);
}

void ExpectUids(uid_t r, uid_t e, uid_t s) {
  uid_t gr, ge, gs;
  ASSERT_THAT(syscall(SYS_getresuid, &gr, &ge, &gs), SyscallSucceeds());
  EXPECT_EQ(gr, r);
  EXPECT_EQ(ge, e);
  EXPECT_EQ(gs, s);
}

void ExpectGids(gid_t r, gid_t e, gid_t s) {
  gid_t gr, ge, gs;
  ASSERT_THAT(syscall(SYS_getresgid, &gr, &ge, &gs), SyscallSucceeds());
  EXPECT_EQ(gr, r);
  EXPECT_EQ(ge, e);
  EXPECT_EQ(gs, s);
}

uint64_t Caps(bool effective) {
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] = {};
  EXPECT_THAT(syscall(SYS_capget, &hdr, data), SyscallSucceeds());
  return effective ? data[0].effective | uint64_t{data[1].effective} << 32
                   : data[0].permitted | uint64_t{data[1].permitted} << 32;
}

TEST(UidGidTest, RunsAsRoot) {
  // These tests assume root, as the sandbox's init is.
  SKIP_IF(getuid() != 0);
  ExpectUids(0, 0, 0);
  ExpectGids(0, 0, 0);
}

TEST(UidGidTest, SetuidAsRootChangesAllAndDropsCapabilities) {
  SKIP_IF(getuid() != 0);
  InThread([] {
    ASSERT_THAT(syscall(SYS_setuid, kNobody), SyscallSucceeds());
    ExpectUids(kNobody, kNobody, kNobody);
    EXPECT_EQ(Caps(false), 0u);
    EXPECT_EQ(Caps(true), 0u);
    EXPECT_THAT(syscall(SYS_setuid, 0), SyscallFailsWithErrno(EPERM));
    EXPECT_THAT(syscall(SYS_setuid, kOther), SyscallFailsWithErrno(EPERM));
    // Its own uid is always allowed.
    EXPECT_THAT(syscall(SYS_setuid, kNobody), SyscallSucceeds());
  });
  ExpectUids(0, 0, 0);
}

TEST(UidGidTest, SetuidMinusOneIsEinval) {
  SKIP_IF(getuid() != 0);
  EXPECT_THAT(syscall(SYS_setuid, -1), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_setgid, -1), SyscallFailsWithErrno(EINVAL));
}

TEST(UidGidTest, SetresuidMinusOneLeavesIdsAlone) {
  SKIP_IF(getuid() != 0);
  EXPECT_THAT(syscall(SYS_setresuid, -1, -1, -1), SyscallSucceeds());
  ExpectUids(0, 0, 0);
}

TEST(UidGidTest, EffectiveUidCanSwitchThroughTheSavedUid) {
  SKIP_IF(getuid() != 0);
  InThread([] {
    const uint64_t permitted = Caps(false);
    // Keep root as the saved uid and become nobody otherwise: capabilities
    // stay permitted but not effective.
    ASSERT_THAT(syscall(SYS_setresuid, kNobody, kNobody, 0), SyscallSucceeds());
    ExpectUids(kNobody, kNobody, 0);
    EXPECT_EQ(Caps(false), permitted);
    EXPECT_EQ(Caps(true), 0u);
    // Back to effective root through the saved uid: capabilities return.
    ASSERT_THAT(syscall(SYS_setreuid, -1, 0), SyscallSucceeds());
    ExpectUids(kNobody, 0, 0);
    EXPECT_EQ(Caps(true), permitted);
    // Swap real and effective: the saved uid follows the new effective.
    ASSERT_THAT(syscall(SYS_setreuid, 0, kNobody), SyscallSucceeds());
    ExpectUids(0, kNobody, kNobody);
    EXPECT_EQ(Caps(true), 0u);
    EXPECT_EQ(Caps(false), permitted);
  });
}

TEST(UidGidTest, UnprivilegedSetresuidOnlyShufflesHeldIds) {
  SKIP_IF(getuid() != 0);
  InThread([] {
    ASSERT_THAT(syscall(SYS_setresuid, kNobody, kOther, kNobody),
                SyscallSucceeds());
    EXPECT_EQ(Caps(false), 0u);
    EXPECT_THAT(syscall(SYS_setresuid, kOther, kNobody, kOther),
                SyscallSucceeds());
    ExpectUids(kOther, kNobody, kOther);
    EXPECT_THAT(syscall(SYS_setresuid, 0, -1, -1), SyscallFailsWithErrno(EPERM));
    EXPECT_THAT(syscall(SYS_setreuid, -1, 1234), SyscallFailsWithErrno(EPERM));
    EXPECT_THAT(syscall(SYS_setreuid, 1234, -1), SyscallFailsWithErrno(EPERM));
    ExpectUids(kOther, kNobody, kOther);
  });
}

TEST(UidGidTest, KeepCapsKeepsThePermittedSet) {
  SKIP_IF(getuid() != 0);
  InThread([] {
    const uint64_t permitted = Caps(false);
    ASSERT_THAT(prctl(PR_SET_KEEPCAPS, 1), SyscallSucceeds());
    EXPECT_THAT(prctl(PR_GET_KEEPCAPS), SyscallSucceedsWithValue(1));
    ASSERT_THAT(syscall(SYS_setresuid, kNobody, kNobody, kNobody),
                SyscallSucceeds());
    EXPECT_EQ(Caps(false), permitted);
    EXPECT_EQ(Caps(true), 0u);
  });
}

TEST(UidGidTest, FsuidFollowsAndReportsTheOldValue) {
  SKIP_IF(getuid() != 0);
  InThread([] {
    // setfsuid returns the previous fs uid, whether or not it changes it.
    EXPECT_EQ(syscall(SYS_setfsuid, kNobody), 0);
    EXPECT_EQ(syscall(SYS_setfsuid, -1), kNobody);
    EXPECT_EQ(syscall(SYS_setfsuid, 0), kNobody);
    // setresuid resets the fs uid to the effective uid.
    ASSERT_THAT(syscall(SYS_setresuid, kNobody, kNobody, kNobody),
                SyscallSucceeds());
    EXPECT_EQ(syscall(SYS_setfsuid, -1), kNobody);
    // Without privilege, an id it does not hold is refused silently.
    EXPECT_EQ(syscall(SYS_setfsuid, 0), kNobody);
    EXPECT_EQ(syscall(SYS_setfsuid, -1), kNobody);
  });
}

TEST(UidGidTest, GidTransitions) {
  SKIP_IF(getuid() != 0);
  InThread([] {
    ASSERT_THAT(syscall(SYS_setresgid, kNobody, kOther, 0), SyscallSucceeds());
    ExpectGids(kNobody, kOther, 0);
    ASSERT_THAT(syscall(SYS_setregid, kOther, -1), SyscallSucceeds());
    // A new real gid makes the saved gid follow the effective one.
    ExpectGids(kOther, kOther, kOther);
    ASSERT_THAT(syscall(SYS_setgid, 0), SyscallSucceeds());
    ExpectGids(0, 0, 0);
    EXPECT_EQ(syscall(SYS_setfsgid, -1), 0);
    // Without CAP_SETGID only held gids are allowed.
    ASSERT_THAT(syscall(SYS_setresgid, kNobody, kNobody, kNobody),
                SyscallSucceeds());
    ASSERT_THAT(syscall(SYS_setresuid, kNobody, kNobody, kNobody),
                SyscallSucceeds());
    EXPECT_THAT(syscall(SYS_setgid, 0), SyscallFailsWithErrno(EPERM));
    EXPECT_THAT(syscall(SYS_setregid, 0, -1), SyscallFailsWithErrno(EPERM));
    EXPECT_THAT(syscall(SYS_setresgid, -1, 0, -1), SyscallFailsWithErrno(EPERM));
    EXPECT_THAT(syscall(SYS_setgid, kNobody), SyscallSucceeds());
  });
  ExpectGids(0, 0, 0);
}

TEST(UidGidTest, SupplementaryGroups) {
  SKIP_IF(getuid() != 0);
  InThread([] {
    const gid_t groups[] = {3, 1, 2};
    ASSERT_THAT(syscall(SYS_setgroups, 3, groups), SyscallSucceeds());
    EXPECT_THAT(syscall(SYS_getgroups, 0, nullptr), SyscallSucceedsWithValue(3));
    gid_t got[3] = {};
    EXPECT_THAT(syscall(SYS_getgroups, 2, got), SyscallFailsWithErrno(EINVAL));
    ASSERT_THAT(syscall(SYS_getgroups, 3, got), SyscallSucceedsWithValue(3));
    EXPECT_THAT(std::vector<gid_t>(got, got + 3),
                ::testing::UnorderedElementsAre(1, 2, 3));
    EXPECT_THAT(syscall(SYS_getgroups, -1, got), SyscallFailsWithErrno(EINVAL));
    const gid_t bad[] = {gid_t(-1)};
    EXPECT_THAT(syscall(SYS_setgroups, 1, bad), SyscallFailsWithErrno(EINVAL));
    EXPECT_THAT(syscall(SYS_setgroups, 65537, groups),
                SyscallFailsWithErrno(EINVAL));
    ASSERT_THAT(syscall(SYS_setgroups, 0, nullptr), SyscallSucceeds());
    EXPECT_THAT(syscall(SYS_getgroups, 0, nullptr), SyscallSucceedsWithValue(0));
    // Without CAP_SETGID.
    ASSERT_THAT(syscall(SYS_setresuid, kNobody, kNobody, kNobody),
                SyscallSucceeds());
    EXPECT_THAT(syscall(SYS_setgroups, 0, nullptr), SyscallFailsWithErrno(EPERM));
  });
}

TEST(UidGidTest, CredentialChangeMakesTheProcessNonDumpable) {
  SKIP_IF(getuid() != 0);
  InThread([] {
    ASSERT_THAT(prctl(PR_SET_PDEATHSIG, SIGUSR1), SyscallSucceeds());
    ASSERT_THAT(syscall(SYS_setresuid, 0, kNobody, 0), SyscallSucceeds());
    EXPECT_THAT(prctl(PR_GET_DUMPABLE), SyscallSucceedsWithValue(0));
    int sig = -1;
    ASSERT_THAT(prctl(PR_GET_PDEATHSIG, &sig), SyscallSucceeds());
    EXPECT_EQ(sig, 0);
  });
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
