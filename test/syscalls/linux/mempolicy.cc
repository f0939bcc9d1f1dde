// NUMA memory policies: set_mempolicy(2), get_mempolicy(2) and mbind(2),
// on a machine (or sandbox) with one memory node, node 0.

#include <errno.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/multiprocess_util.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

// include/uapi/linux/mempolicy.h
constexpr int kDefault = 0;
constexpr int kPreferred = 1;
constexpr int kBind = 2;
constexpr int kInterleave = 3;
constexpr int kLocal = 4;
constexpr int kPreferredMany = 5;
constexpr int kStaticNodes = 1 << 15;
constexpr int kRelativeNodes = 1 << 14;
constexpr int kNumaBalancing = 1 << 13;
constexpr int kFNode = 1;
constexpr int kFAddr = 2;
constexpr int kFMemsAllowed = 4;
constexpr int kMfStrict = 1;
constexpr int kMfMove = 2;
constexpr int kMfMoveAll = 4;

// The bits a nodemask argument counts: maxnode is one more than the last.
constexpr unsigned long kMaxNode = 64 + 1;

long SetPolicy(int mode, unsigned long mask, unsigned long maxnode = kMaxNode) {
  return syscall(SYS_set_mempolicy, mode, &mask, maxnode);
}

long GetPolicy(int* mode, unsigned long* mask, void* addr = nullptr,
               unsigned long flags = 0) {
  return syscall(SYS_get_mempolicy, mode, mask, kMaxNode, addr, flags);
}

TEST(MempolicyTest, DefaultPolicyIsDefaultWithNoNodes) {
  int mode = -1;
  unsigned long mask = ~0UL;
  ASSERT_THAT(GetPolicy(&mode, &mask), SyscallSucceeds());
  EXPECT_EQ(mode, kDefault);
  EXPECT_EQ(mask, 0UL);
}

TEST(MempolicyTest, MemsAllowedIsNodeZero) {
  int mode = -1;
  unsigned long mask = 0;
  ASSERT_THAT(GetPolicy(&mode, &mask, nullptr, kFMemsAllowed),
              SyscallSucceeds());
  EXPECT_EQ(mode, 0);
  EXPECT_EQ(mask, 1UL);
  EXPECT_THAT(GetPolicy(&mode, &mask, nullptr, kFMemsAllowed | kFNode),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(GetPolicy(&mode, &mask, nullptr, 8), SyscallFailsWithErrno(EINVAL));
}

TEST(MempolicyTest, SetAndGetEachMode) {
  EXPECT_EQ(InForkedChild([] {
    for (int mode : {kBind, kInterleave, kPreferred, kPreferredMany}) {
      ASSERT_THAT(SetPolicy(mode, 1), SyscallSucceeds()) << mode;
      int got = -1;
      unsigned long mask = 0;
      ASSERT_THAT(GetPolicy(&got, &mask), SyscallSucceeds());
      EXPECT_EQ(got, mode);
      EXPECT_EQ(mask, 1UL);
    }
    ASSERT_THAT(SetPolicy(kLocal, 0), SyscallSucceeds());
    int got = -1;
    unsigned long mask = ~0UL;
    ASSERT_THAT(GetPolicy(&got, &mask), SyscallSucceeds());
    EXPECT_EQ(got, kLocal);
    EXPECT_EQ(mask, 0UL);
    // PREFERRED with no nodes means local allocation.
    ASSERT_THAT(SetPolicy(kPreferred, 0), SyscallSucceeds());
    ASSERT_THAT(GetPolicy(&got, &mask), SyscallSucceeds());
    EXPECT_EQ(got, kLocal);
    ASSERT_THAT(SetPolicy(kDefault, 0), SyscallSucceeds());
    ASSERT_THAT(GetPolicy(&got, &mask), SyscallSucceeds());
    EXPECT_EQ(got, kDefault);
  }), 0);
}

TEST(MempolicyTest, InvalidModesAndNodes) {
  EXPECT_EQ(InForkedChild([] {
    EXPECT_THAT(SetPolicy(42, 1), SyscallFailsWithErrno(EINVAL));
    EXPECT_THAT(SetPolicy(kBind | kStaticNodes | kRelativeNodes, 1),
                SyscallFailsWithErrno(EINVAL));
    // DEFAULT and LOCAL take no nodes; the others need some.
    EXPECT_THAT(SetPolicy(kDefault, 1), SyscallFailsWithErrno(EINVAL));
    EXPECT_THAT(SetPolicy(kLocal, 1), SyscallFailsWithErrno(EINVAL));
    EXPECT_THAT(SetPolicy(kBind, 0), SyscallFailsWithErrno(EINVAL));
    EXPECT_THAT(SetPolicy(kInterleave, 0), SyscallFailsWithErrno(EINVAL));
    EXPECT_THAT(SetPolicy(kPreferred | kStaticNodes, 0),
                SyscallFailsWithErrno(EINVAL));
    // Only node 0 has memory.
    EXPECT_THAT(SetPolicy(kBind, 2), SyscallFailsWithErrno(EINVAL));
    // Balancing goes with BIND only among these.
    EXPECT_THAT(SetPolicy(kInterleave | kNumaBalancing, 1),
                SyscallFailsWithErrno(EINVAL));
    EXPECT_THAT(SetPolicy(kBind | kNumaBalancing, 1), SyscallSucceeds());
    // A maxnode beyond a page of bits.
    EXPECT_THAT(SetPolicy(kBind, 1, 4096 * 8 + 2), SyscallFailsWithErrno(EINVAL));
    EXPECT_THAT(syscall(SYS_set_mempolicy, kBind, reinterpret_cast<void*>(8),
                        kMaxNode),
                SyscallFailsWithErrno(EFAULT));
  }), 0);
}

TEST(MempolicyTest, MaxnodeOfOneMeansNoNodes) {
  EXPECT_EQ(InForkedChild([] {
    EXPECT_THAT(SetPolicy(kBind, 1, 1), SyscallFailsWithErrno(EINVAL));
    EXPECT_THAT(SetPolicy(kLocal, 1, 1), SyscallSucceeds());
  }), 0);
}

TEST(MempolicyTest, StaticAndRelativeNodesKeepTheUserMask) {
  EXPECT_EQ(InForkedChild([] {
    // Relative node 3 folds onto node 0; the mask reported is the user's.
    ASSERT_THAT(SetPolicy(kInterleave | kRelativeNodes, 8), SyscallSucceeds());
    int got = -1;
    unsigned long mask = 0;
    ASSERT_THAT(GetPolicy(&got, &mask), SyscallSucceeds());
    EXPECT_EQ(got, kInterleave | kRelativeNodes);
    EXPECT_EQ(mask, 8UL);
    ASSERT_THAT(SetPolicy(kBind | kStaticNodes, 3), SyscallSucceeds());
    ASSERT_THAT(GetPolicy(&got, &mask), SyscallSucceeds());
    EXPECT_EQ(got, kBind | kStaticNodes);
    EXPECT_EQ(mask, 3UL);
  }), 0);
}

TEST(MempolicyTest, NodeOfInterleaveAndOfAnAddress) {
  EXPECT_EQ(InForkedChild([] {
    int node = -1;
    // F_NODE alone needs an interleave policy.
    EXPECT_THAT(GetPolicy(&node, nullptr, nullptr, kFNode),
                SyscallFailsWithErrno(EINVAL));
    ASSERT_THAT(SetPolicy(kInterleave, 1), SyscallSucceeds());
    ASSERT_THAT(GetPolicy(&node, nullptr, nullptr, kFNode), SyscallSucceeds());
    EXPECT_EQ(node, 0);
    int x = 1;
    node = -1;
    ASSERT_THAT(GetPolicy(&node, nullptr, &x, kFNode | kFAddr), SyscallSucceeds());
    EXPECT_EQ(node, 0);
    // An address without F_ADDR.
    EXPECT_THAT(GetPolicy(&node, nullptr, &x, 0), SyscallFailsWithErrno(EINVAL));
  }), 0);
}

TEST(MempolicyTest, GetChecksMaxnode) {
  int mode;
  unsigned long mask;
  EXPECT_THAT(syscall(SYS_get_mempolicy, &mode, &mask, 0, nullptr, 0),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(syscall(SYS_get_mempolicy, &mode, nullptr, 0, nullptr, 0),
              SyscallSucceeds());
}

TEST(MbindTest, PolicyOfARange) {
  const size_t page = sysconf(_SC_PAGESIZE);
  char* p = static_cast<char*>(mmap(nullptr, 4 * page, PROT_READ | PROT_WRITE,
                                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(p, MAP_FAILED);
  unsigned long mask = 1;
  ASSERT_THAT(syscall(SYS_mbind, p + page, 2 * page, kBind, &mask, kMaxNode, 0),
              SyscallSucceeds());
  int mode = -1;
  unsigned long got = 0;
  ASSERT_THAT(GetPolicy(&mode, &got, p + page, kFAddr), SyscallSucceeds());
  EXPECT_EQ(mode, kBind);
  EXPECT_EQ(got, 1UL);
  ASSERT_THAT(GetPolicy(&mode, &got, p + 2 * page + 17, kFAddr), SyscallSucceeds());
  EXPECT_EQ(mode, kBind);
  // Outside the range, the task's policy.
  ASSERT_THAT(GetPolicy(&mode, &got, p, kFAddr), SyscallSucceeds());
  EXPECT_EQ(mode, kDefault);
  ASSERT_THAT(GetPolicy(&mode, &got, p + 3 * page, kFAddr), SyscallSucceeds());
  EXPECT_EQ(mode, kDefault);
  // MPOL_DEFAULT removes the range's policy.
  ASSERT_THAT(syscall(SYS_mbind, p + page, page, kDefault, nullptr, 0, 0),
              SyscallSucceeds());
  ASSERT_THAT(GetPolicy(&mode, &got, p + page, kFAddr), SyscallSucceeds());
  EXPECT_EQ(mode, kDefault);
  ASSERT_THAT(GetPolicy(&mode, &got, p + 2 * page, kFAddr), SyscallSucceeds());
  EXPECT_EQ(mode, kBind);
  // The policy of a range goes with a fork.
  pid_t pid = fork();
  ASSERT_THAT(pid, SyscallSucceeds());
  if (pid == 0) {
    int m = -1;
    unsigned long g = 0;
    if (GetPolicy(&m, &g, p + 2 * page, kFAddr) != 0 || m != kBind) _exit(1);
    _exit(0);
  }
  int status;
  ASSERT_THAT(waitpid(pid, &status, 0), SyscallSucceedsWithValue(pid));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_THAT(munmap(p, 4 * page), SyscallSucceeds());
  // Unmapped now.
  EXPECT_THAT(GetPolicy(&mode, &got, p + page, kFAddr),
              SyscallFailsWithErrno(EFAULT));
}

TEST(MbindTest, Checks) {
  const size_t page = sysconf(_SC_PAGESIZE);
  char* p = static_cast<char*>(mmap(nullptr, 3 * page, PROT_READ | PROT_WRITE,
                                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(p, MAP_FAILED);
  unsigned long mask = 1;
  // Unaligned start.
  EXPECT_THAT(syscall(SYS_mbind, p + 1, page, kBind, &mask, kMaxNode, 0),
              SyscallFailsWithErrno(EINVAL));
  // Unknown flags.
  EXPECT_THAT(syscall(SYS_mbind, p, page, kBind, &mask, kMaxNode, 8),
              SyscallFailsWithErrno(EINVAL));
  // Zero length does nothing.
  EXPECT_THAT(syscall(SYS_mbind, p, 0, kBind, &mask, kMaxNode, 0),
              SyscallSucceeds());
  // Strict and move are fine with one node.
  EXPECT_THAT(syscall(SYS_mbind, p, page, kBind, &mask, kMaxNode,
                      kMfStrict | kMfMove),
              SyscallSucceeds());
  // A hole in the range.
  ASSERT_THAT(munmap(p + page, page), SyscallSucceeds());
  EXPECT_THAT(syscall(SYS_mbind, p, 3 * page, kBind, &mask, kMaxNode, 0),
              SyscallFailsWithErrno(EFAULT));
  EXPECT_THAT(syscall(SYS_mbind, p + page, page, kBind, &mask, kMaxNode, 0),
              SyscallFailsWithErrno(EFAULT));
  // A bad mode.
  EXPECT_THAT(syscall(SYS_mbind, p, page, 42, &mask, kMaxNode, 0),
              SyscallFailsWithErrno(EINVAL));
  munmap(p, 3 * page);
}

TEST(MbindTest, MoveAllNeedsCapSysNice) {
  const size_t page = sysconf(_SC_PAGESIZE);
  char* p = static_cast<char*>(mmap(nullptr, page, PROT_READ | PROT_WRITE,
                                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(p, MAP_FAILED);
  unsigned long mask = 1;
  if (geteuid() == 0) {
    EXPECT_THAT(syscall(SYS_mbind, p, page, kBind, &mask, kMaxNode, kMfMoveAll),
                SyscallSucceeds());
  }
  munmap(p, page);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
