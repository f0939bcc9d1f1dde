// mlock(2), mlock2(2), munlock(2), mlockall(2), munlockall(2) (mm/mlock.c)
// and MAP_LOCKED.

#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/test_util.h"

#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 1
#endif
#ifndef MCL_ONFAULT
#define MCL_ONFAULT 4
#endif

namespace pyvisor {
namespace testing {
namespace {

const size_t kPage = sysconf(_SC_PAGESIZE);

char* Map(size_t len, int prot = PROT_READ | PROT_WRITE,
          int flags = MAP_PRIVATE | MAP_ANONYMOUS) {
  void* p = mmap(nullptr, len, prot, flags, -1, 0);
  EXPECT_THAT(p, SyscallSucceeds());
  return static_cast<char*>(p);
}

std::vector<unsigned char> Mincore(void* p, size_t len) {
  std::vector<unsigned char> vec((len + kPage - 1) / kPage, 0);
  EXPECT_THAT(mincore(p, len, vec.data()), SyscallSucceeds());
  for (auto& v : vec) v &= 1;
  return vec;
}

TEST(MlockTest, LockPopulates) {
  char* p = Map(4 * kPage);
  ASSERT_THAT(mlock(p + 10, kPage), SyscallSucceeds());
  // The range is widened to whole pages: pages 0 and 1.
  EXPECT_EQ(Mincore(p, 4 * kPage), (std::vector<unsigned char>{1, 1, 0, 0}));
  EXPECT_THAT(munlock(p, 4 * kPage), SyscallSucceeds());
  munmap(p, 4 * kPage);
}

TEST(MlockTest, OnfaultDoesNotPopulate) {
  char* p = Map(2 * kPage);
  ASSERT_THAT(syscall(SYS_mlock2, p, 2 * kPage, MLOCK_ONFAULT),
              SyscallSucceeds());
  EXPECT_EQ(Mincore(p, 2 * kPage), std::vector<unsigned char>(2, 0));
  EXPECT_THAT(syscall(SYS_mlock2, p, kPage, 2), SyscallFailsWithErrno(EINVAL));
  munmap(p, 2 * kPage);
}

TEST(MlockTest, UnmappedIsEnomem) {
  char* p = Map(2 * kPage);
  ASSERT_THAT(munmap(p + kPage, kPage), SyscallSucceeds());
  EXPECT_THAT(mlock(p, 2 * kPage), SyscallFailsWithErrno(ENOMEM));
  EXPECT_THAT(munlock(p, 2 * kPage), SyscallFailsWithErrno(ENOMEM));
  munmap(p, kPage);
}

TEST(MlockTest, MapLocked) {
  char* p = Map(2 * kPage, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED);
  EXPECT_EQ(Mincore(p, 2 * kPage), std::vector<unsigned char>(2, 1));
  munmap(p, 2 * kPage);
}

TEST(MlockTest, Mlockall) {
  EXPECT_THAT(mlockall(0), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(mlockall(MCL_ONFAULT), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(mlockall(0x100), SyscallFailsWithErrno(EINVAL));
  // MCL_FUTURE: new mappings come populated.
  ASSERT_THAT(mlockall(MCL_FUTURE), SyscallSucceeds());
  char* p = Map(2 * kPage);
  ASSERT_THAT(munlockall(), SyscallSucceeds());
  EXPECT_EQ(Mincore(p, 2 * kPage), std::vector<unsigned char>(2, 1));
  char* q = Map(2 * kPage);
  EXPECT_EQ(Mincore(q, 2 * kPage), std::vector<unsigned char>(2, 0));
  munmap(p, 2 * kPage);
  munmap(q, 2 * kPage);
}

// Without CAP_IPC_LOCK, RLIMIT_MEMLOCK bounds what can be locked.
TEST(MlockTest, RlimitMemlock) {
  // Needs capset(2) to drop CAP_IPC_LOCK; root keeps it.
  SKIP_IF(geteuid() == 0);
  struct rlimit old;
  ASSERT_THAT(getrlimit(RLIMIT_MEMLOCK, &old), SyscallSucceeds());
  struct rlimit lim = {4 * kPage, old.rlim_max};
  ASSERT_THAT(setrlimit(RLIMIT_MEMLOCK, &lim), SyscallSucceeds());
  char* p = Map(8 * kPage);
  EXPECT_THAT(mlock(p, 2 * kPage), SyscallSucceeds());
  // Relocking what is locked does not count twice.
  EXPECT_THAT(mlock(p, 4 * kPage), SyscallSucceeds());
  EXPECT_THAT(mlock(p, 8 * kPage), SyscallFailsWithErrno(ENOMEM));
  EXPECT_EQ(mmap(nullptr, 8 * kPage, PROT_READ,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED, -1, 0),
            MAP_FAILED);
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_THAT(munlock(p, 8 * kPage), SyscallSucceeds());
  lim.rlim_cur = 0;
  ASSERT_THAT(setrlimit(RLIMIT_MEMLOCK, &lim), SyscallSucceeds());
  EXPECT_THAT(mlock(p, kPage), SyscallFailsWithErrno(EPERM));
  ASSERT_THAT(setrlimit(RLIMIT_MEMLOCK, &old), SyscallSucceeds());
  munmap(p, 8 * kPage);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
