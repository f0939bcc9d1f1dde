// madvise(2) (mm/madvise.c) and mincore(2) (mm/mincore.c).

#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/signal_util.h"
#include "test/util/test_util.h"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#define MADV_POPULATE_WRITE 23
#endif
#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#define MADV_KEEPONFORK 19
#endif
#ifndef MADV_COLD
#define MADV_COLD 20
#define MADV_PAGEOUT 21
#endif

namespace pyvisor {
namespace testing {
namespace {

const size_t kPage = sysconf(_SC_PAGESIZE);

char* Map(size_t len, int prot = PROT_READ | PROT_WRITE,
          int flags = MAP_PRIVATE | MAP_ANONYMOUS, int fd = -1) {
  void* p = mmap(nullptr, len, prot, flags, fd, 0);
  EXPECT_THAT(p, SyscallSucceeds());
  return static_cast<char*>(p);
}

FileDescriptor NewMemfd(size_t size) {
  FileDescriptor fd(static_cast<int>(syscall(SYS_memfd_create, "madvise", 0)));
  EXPECT_TRUE(fd.valid());
  std::string data(size, 'f');
  EXPECT_THAT(pwrite(fd.get(), data.data(), size, 0),
              SyscallSucceedsWithValue(static_cast<ssize_t>(size)));
  return fd;
}

std::vector<unsigned char> Mincore(void* p, size_t len) {
  std::vector<unsigned char> vec((len + kPage - 1) / kPage, 0xff);
  EXPECT_THAT(mincore(p, len, vec.data()), SyscallSucceeds());
  for (auto& v : vec) v &= 1;
  return vec;
}

TEST(MadviseTest, DontneedZeroesPrivateAnonymousMemory) {
  char* p = Map(3 * kPage);
  memset(p, 7, 3 * kPage);
  ASSERT_THAT(madvise(p + kPage, kPage, MADV_DONTNEED), SyscallSucceeds());
  EXPECT_EQ(p[0], 7);
  EXPECT_EQ(p[kPage], 0);
  EXPECT_EQ(p[2 * kPage - 1], 0);
  EXPECT_EQ(p[2 * kPage], 7);
  // The memory is still usable.
  p[kPage] = 1;
  EXPECT_EQ(p[kPage], 1);
  munmap(p, 3 * kPage);
}

TEST(MadviseTest, DontneedKeepsSharedMemory) {
  char* p = Map(kPage, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
  p[0] = 5;
  ASSERT_THAT(madvise(p, kPage, MADV_DONTNEED), SyscallSucceeds());
  EXPECT_EQ(p[0], 5);
  munmap(p, kPage);
}

TEST(MadviseTest, DontneedOnAPrivateFileMappingRereadsTheFile) {
  FileDescriptor fd = NewMemfd(kPage);
  char* p = Map(kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd.get());
  p[0] = 'x';
  ASSERT_THAT(madvise(p, kPage, MADV_DONTNEED), SyscallSucceeds());
  EXPECT_EQ(p[0], 'f');
  munmap(p, kPage);
}

TEST(MadviseTest, FreeOnlyOnAnonymousMemory) {
  char* p = Map(kPage);
  p[0] = 1;
  EXPECT_THAT(madvise(p, kPage, MADV_FREE), SyscallSucceeds());
  p[0] = 2;
  EXPECT_EQ(p[0], 2);
  munmap(p, kPage);
  FileDescriptor fd = NewMemfd(kPage);
  char* f = Map(kPage, PROT_READ, MAP_PRIVATE, fd.get());
  EXPECT_THAT(madvise(f, kPage, MADV_FREE), SyscallFailsWithErrno(EINVAL));
  munmap(f, kPage);
}

TEST(MadviseTest, RemovePunchesAHoleInSharedMemory) {
  char* p = Map(2 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
  memset(p, 3, 2 * kPage);
  ASSERT_THAT(madvise(p, kPage, MADV_REMOVE), SyscallSucceeds());
  EXPECT_EQ(p[0], 0);
  EXPECT_EQ(p[kPage], 3);
  munmap(p, 2 * kPage);

  FileDescriptor fd = NewMemfd(kPage);
  char* s = Map(kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get());
  ASSERT_THAT(madvise(s, kPage, MADV_REMOVE), SyscallSucceeds());
  char c = 1;
  ASSERT_THAT(pread(fd.get(), &c, 1, 0), SyscallSucceedsWithValue(1));
  EXPECT_EQ(c, 0);
  munmap(s, kPage);
}

TEST(MadviseTest, RemoveNeedsASharedWritableFile) {
  char* p = Map(kPage);
  EXPECT_THAT(madvise(p, kPage, MADV_REMOVE), SyscallFailsWithErrno(EINVAL));
  munmap(p, kPage);
  FileDescriptor fd = NewMemfd(kPage);
  char* f = Map(kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd.get());
  EXPECT_THAT(madvise(f, kPage, MADV_REMOVE), SyscallFailsWithErrno(EACCES));
  munmap(f, kPage);
}

TEST(MadviseTest, ArgumentErrors) {
  char* p = Map(2 * kPage);
  EXPECT_THAT(madvise(p + 1, kPage, MADV_NORMAL), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(madvise(p, kPage, 12345), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(madvise(p, 0, MADV_DONTNEED), SyscallSucceeds());
  EXPECT_THAT(madvise(p, static_cast<size_t>(-1), MADV_NORMAL),
              SyscallFailsWithErrno(EINVAL));
  // A hole in the range: ENOMEM, but the mapped part is advised.
  p[0] = 9;
  ASSERT_THAT(munmap(p + kPage, kPage), SyscallSucceeds());
  EXPECT_THAT(madvise(p, 2 * kPage, MADV_DONTNEED),
              SyscallFailsWithErrno(ENOMEM));
  EXPECT_EQ(p[0], 0);
  munmap(p, kPage);
}

TEST(MadviseTest, HintsSucceed) {
  char* p = Map(4 * kPage);
  for (int advice : {MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL, MADV_WILLNEED,
                     MADV_DONTDUMP, MADV_DODUMP, MADV_HUGEPAGE,
                     MADV_NOHUGEPAGE, MADV_COLD, MADV_PAGEOUT}) {
    EXPECT_THAT(madvise(p, 4 * kPage, advice), SyscallSucceeds()) << advice;
  }
  munmap(p, 4 * kPage);
}

TEST(MadviseTest, LockedMemoryRefusesDontneed) {
  char* p = Map(kPage);
  ASSERT_THAT(mlock(p, kPage), SyscallSucceeds());
  EXPECT_THAT(madvise(p, kPage, MADV_DONTNEED), SyscallFailsWithErrno(EINVAL));
  munmap(p, kPage);
}

TEST(MadviseTest, WipeonforkOnlyOnPrivateAnonymousMemory) {
  char* p = Map(kPage, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
  EXPECT_THAT(madvise(p, kPage, MADV_WIPEONFORK), SyscallFailsWithErrno(EINVAL));
  munmap(p, kPage);
  char* q = Map(kPage);
  EXPECT_THAT(madvise(q, kPage, MADV_WIPEONFORK), SyscallSucceeds());
  EXPECT_THAT(madvise(q, kPage, MADV_KEEPONFORK), SyscallSucceeds());
  munmap(q, kPage);
}

TEST(MadviseTest, Populate) {
  char* p = Map(4 * kPage);
  EXPECT_EQ(Mincore(p, 4 * kPage), std::vector<unsigned char>(4, 0));
  ASSERT_THAT(madvise(p, 2 * kPage, MADV_POPULATE_WRITE), SyscallSucceeds());
  EXPECT_EQ(Mincore(p, 4 * kPage), (std::vector<unsigned char>{1, 1, 0, 0}));
  munmap(p, 4 * kPage);

  char* none = Map(kPage, PROT_NONE);
  EXPECT_THAT(madvise(none, kPage, MADV_POPULATE_READ),
              SyscallFailsWithErrno(EINVAL));
  munmap(none, kPage);
  char* ro = Map(kPage, PROT_READ);
  EXPECT_THAT(madvise(ro, kPage, MADV_POPULATE_WRITE),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(madvise(ro, kPage, MADV_POPULATE_READ), SyscallSucceeds());
  munmap(ro, kPage);

  // Past the end of a file: EFAULT.
  FileDescriptor fd = NewMemfd(kPage);
  char* f = Map(2 * kPage, PROT_READ, MAP_SHARED, fd.get());
  EXPECT_THAT(madvise(f, 2 * kPage, MADV_POPULATE_READ),
              SyscallFailsWithErrno(EFAULT));
  munmap(f, 2 * kPage);
}

TEST(MadviseTest, DontforkAndWipeonforkAcrossFork) {
  char* keep = Map(kPage);
  char* gone = Map(kPage);
  char* wiped = Map(kPage);
  keep[0] = 1;
  gone[0] = 2;
  wiped[0] = 3;
  ASSERT_THAT(madvise(gone, kPage, MADV_DONTFORK), SyscallSucceeds());
  ASSERT_THAT(madvise(wiped, kPage, MADV_WIPEONFORK), SyscallSucceeds());
  pid_t pid = fork();
  if (pid < 0 && errno == ENOSYS) {
    GTEST_SKIP() << "fork(2) is not available";
  }
  ASSERT_THAT(pid, SyscallSucceeds());
  if (pid == 0) {
    if (keep[0] != 1 || wiped[0] != 0) _exit(1);
    std::optional<Fault> f = ReadFaults(gone);
    _exit(f.has_value() && f->code == SEGV_MAPERR ? 0 : 2);
  }
  int status;
  ASSERT_THAT(waitpid(pid, &status, 0), SyscallSucceedsWithValue(pid));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(wiped[0], 3);
  munmap(keep, kPage);
  munmap(gone, kPage);
  munmap(wiped, kPage);
}

TEST(MincoreTest, ReportsTouchedPages) {
  char* p = Map(4 * kPage);
  EXPECT_EQ(Mincore(p, 4 * kPage), std::vector<unsigned char>(4, 0));
  p[kPage] = 1;
  p[3 * kPage + 100] = 1;
  EXPECT_EQ(Mincore(p, 4 * kPage), (std::vector<unsigned char>{0, 1, 0, 1}));
  ASSERT_THAT(madvise(p, 4 * kPage, MADV_DONTNEED), SyscallSucceeds());
  EXPECT_EQ(Mincore(p, 4 * kPage), std::vector<unsigned char>(4, 0));
  // A length that is not a whole number of pages covers the last page.
  p[0] = 1;
  EXPECT_EQ(Mincore(p, 1), std::vector<unsigned char>(1, 1));
  munmap(p, 4 * kPage);
}

TEST(MincoreTest, FilePagesInMemoryAreResident) {
  FileDescriptor fd = NewMemfd(2 * kPage);
  char* f = Map(2 * kPage, PROT_READ, MAP_SHARED, fd.get());
  // The file's pages are in memory whether or not this mapping touched them.
  EXPECT_EQ(Mincore(f, 2 * kPage), std::vector<unsigned char>(2, 1));
  munmap(f, 2 * kPage);
}

TEST(MincoreTest, Errors) {
  char* p = Map(2 * kPage);
  unsigned char vec[2];
  EXPECT_THAT(mincore(p + 1, kPage, vec), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(mincore(p, kPage, reinterpret_cast<unsigned char*>(8)),
              SyscallFailsWithErrno(EFAULT));
  ASSERT_THAT(munmap(p + kPage, kPage), SyscallSucceeds());
  EXPECT_THAT(mincore(p, 2 * kPage, vec), SyscallFailsWithErrno(ENOMEM));
  EXPECT_THAT(mincore(reinterpret_cast<void*>(0x7ffffffff000ULL), 4 * kPage,
                      vec),
              SyscallFailsWithErrno(ENOMEM));
  munmap(p, kPage);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
