// RLIMIT_AS and RLIMIT_DATA on mmap(2), mremap(2) and brk(2)
// (mm/mmap.c may_expand_vm, check_data_rlimit).

#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

const size_t kPage = sysconf(_SC_PAGESIZE);

// ScopedRlimit sets a soft limit and restores the old one on destruction.
class ScopedRlimit {
 public:
  ScopedRlimit(int resource, rlim_t soft) : resource_(resource) {
    EXPECT_THAT(getrlimit(resource, &old_), SyscallSucceeds());
    struct rlimit lim = {soft, old_.rlim_max};
    EXPECT_THAT(setrlimit(resource, &lim), SyscallSucceeds());
  }
  ~ScopedRlimit() { EXPECT_THAT(setrlimit(resource_, &old_), SyscallSucceeds()); }

 private:
  int resource_;
  struct rlimit old_;
};

TEST(MmRlimitTest, AddressSpaceLimit) {
  // Leave 64 MiB of room above what is mapped now: a little more mapping
  // works, a lot more does not.
  void* small;
  void* big;
  {
    ScopedRlimit lim(RLIMIT_AS, 1ULL << 36);  // far above current use
    small = mmap(nullptr, kPage, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    big = mmap(nullptr, 1ULL << 37, PROT_READ,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  }
  ASSERT_THAT(small, SyscallSucceeds());
  EXPECT_EQ(big, MAP_FAILED);
  EXPECT_EQ(errno, ENOMEM);
  munmap(small, kPage);
}

TEST(MmRlimitTest, AddressSpaceLimitOnMremapGrowth) {
  char* p = static_cast<char*>(mmap(nullptr, kPage, PROT_READ,
                                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_THAT(p, SyscallSucceeds());
  void* q;
  {
    ScopedRlimit lim(RLIMIT_AS, 1ULL << 36);
    q = mremap(p, kPage, 1ULL << 37, MREMAP_MAYMOVE);
  }
  EXPECT_EQ(q, MAP_FAILED);
  EXPECT_EQ(errno, ENOMEM);
  munmap(p, kPage);
}

TEST(MmRlimitTest, DataLimitOnPrivateWritableMappings) {
  void* data;
  void* readonly;
  void* shared;
  {
    ScopedRlimit lim(RLIMIT_DATA, 1ULL << 30);
    data = mmap(nullptr, 2ULL << 30, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    readonly = mmap(nullptr, 2ULL << 30, PROT_READ,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    shared = mmap(nullptr, 2ULL << 30, PROT_READ | PROT_WRITE,
                  MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  }
  EXPECT_EQ(data, MAP_FAILED);
  EXPECT_EQ(errno, ENOMEM);
  ASSERT_THAT(readonly, SyscallSucceeds());
  ASSERT_THAT(shared, SyscallSucceeds());
  munmap(readonly, 2ULL << 30);
  munmap(shared, 2ULL << 30);
}

TEST(MmRlimitTest, DataLimitOnBrk) {
  const uintptr_t start = syscall(SYS_brk, 0);
  uintptr_t got;
  {
    ScopedRlimit lim(RLIMIT_DATA, 0);
    got = syscall(SYS_brk, start + 16 * kPage);
  }
  EXPECT_EQ(got, start);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
