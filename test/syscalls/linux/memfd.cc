// memfd_create(2) and file seals (fcntl F_ADD_SEALS / F_GET_SEALS).

#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/test_util.h"

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
#endif
#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

namespace pyvisor {
namespace testing {
namespace {

const size_t kPage = sysconf(_SC_PAGESIZE);

int MemfdCreate(const char* name, unsigned flags) {
  return static_cast<int>(syscall(SYS_memfd_create, name, flags));
}

FileDescriptor Sealable(size_t size = 0) {
  FileDescriptor fd(MemfdCreate("sealable", MFD_ALLOW_SEALING));
  EXPECT_TRUE(fd.valid()) << strerror(errno);
  if (size) {
    std::string data(size, 'x');
    EXPECT_THAT(pwrite(fd.get(), data.data(), size, 0),
                SyscallSucceedsWithValue(static_cast<ssize_t>(size)));
  }
  return fd;
}

TEST(MemfdTest, ReadWrite) {
  FileDescriptor fd(MemfdCreate("rw", 0));
  ASSERT_TRUE(fd.valid());
  ASSERT_THAT(write(fd.get(), "hello", 5), SyscallSucceedsWithValue(5));
  ASSERT_THAT(write(fd.get(), " world", 6), SyscallSucceedsWithValue(6));
  char buf[16] = {};
  EXPECT_THAT(pread(fd.get(), buf, sizeof(buf), 0),
              SyscallSucceedsWithValue(11));
  EXPECT_STREQ(buf, "hello world");
  // Reading at the end of file returns nothing.
  EXPECT_THAT(read(fd.get(), buf, sizeof(buf)), SyscallSucceedsWithValue(0));
  // A write past the end leaves a hole of zeroes.
  ASSERT_THAT(pwrite(fd.get(), "!", 1, 20), SyscallSucceedsWithValue(1));
  memset(buf, 1, sizeof(buf));
  EXPECT_THAT(pread(fd.get(), buf, 10, 11), SyscallSucceedsWithValue(10));
  for (int i = 0; i < 9; i++) EXPECT_EQ(buf[i], 0);
  EXPECT_EQ(buf[9], '!');
}

TEST(MemfdTest, Flags) {
  EXPECT_THAT(MemfdCreate("x", 0x1000), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(MemfdCreate("x", MFD_EXEC | MFD_NOEXEC_SEAL),
              SyscallFailsWithErrno(EINVAL));
  FileDescriptor fd(MemfdCreate("x", MFD_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  EXPECT_THAT(fcntl(fd.get(), F_GETFD), SyscallSucceedsWithValue(FD_CLOEXEC));
  EXPECT_THAT(fcntl(fd.get(), F_GETFL) & O_ACCMODE,
              SyscallSucceedsWithValue(O_RDWR));
}

TEST(MemfdTest, NameLength) {
  // 249 bytes is the longest name.
  std::string name(249, 'n');
  FileDescriptor fd(MemfdCreate(name.c_str(), 0));
  EXPECT_TRUE(fd.valid());
  name += 'n';
  EXPECT_THAT(MemfdCreate(name.c_str(), 0), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(MemfdCreate(reinterpret_cast<const char*>(8), 0),
              SyscallFailsWithErrno(EFAULT));
}

TEST(MemfdTest, DefaultSealsForbidSealing) {
  FileDescriptor fd(MemfdCreate("x", 0));
  ASSERT_TRUE(fd.valid());
  EXPECT_THAT(fcntl(fd.get(), F_GET_SEALS), SyscallSucceedsWithValue(F_SEAL_SEAL));
  EXPECT_THAT(fcntl(fd.get(), F_ADD_SEALS, F_SEAL_WRITE),
              SyscallFailsWithErrno(EPERM));
}

TEST(MemfdTest, SealSealStopsSealing) {
  FileDescriptor fd = Sealable();
  EXPECT_THAT(fcntl(fd.get(), F_GET_SEALS), SyscallSucceedsWithValue(0));
  ASSERT_THAT(fcntl(fd.get(), F_ADD_SEALS, F_SEAL_GROW), SyscallSucceeds());
  ASSERT_THAT(fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SEAL), SyscallSucceeds());
  EXPECT_THAT(fcntl(fd.get(), F_GET_SEALS),
              SyscallSucceedsWithValue(F_SEAL_GROW | F_SEAL_SEAL));
  EXPECT_THAT(fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK),
              SyscallFailsWithErrno(EPERM));
  EXPECT_THAT(fcntl(fd.get(), F_ADD_SEALS, 0x1000),
              SyscallFailsWithErrno(EINVAL));
}

TEST(MemfdTest, SealWrite) {
  FileDescriptor fd = Sealable(kPage);
  ASSERT_THAT(fcntl(fd.get(), F_ADD_SEALS, F_SEAL_WRITE), SyscallSucceeds());
  EXPECT_THAT(pwrite(fd.get(), "y", 1, 0), SyscallFailsWithErrno(EPERM));
  EXPECT_THAT(write(fd.get(), "y", 1), SyscallFailsWithErrno(EPERM));
  EXPECT_THAT(mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_SHARED,
                   fd.get(), 0),
              SyscallFailsWithErrno(EPERM));
  // Read-only shared mappings are allowed but cannot become writable.
  void* p = mmap(nullptr, kPage, PROT_READ, MAP_SHARED, fd.get(), 0);
  ASSERT_THAT(p, SyscallSucceeds());
  EXPECT_THAT(mprotect(p, kPage, PROT_READ | PROT_WRITE),
              SyscallFailsWithErrno(EACCES));
  munmap(p, kPage);
  // Private mappings can be written: the file does not change.
  char* q = static_cast<char*>(mmap(nullptr, kPage, PROT_READ | PROT_WRITE,
                                    MAP_PRIVATE, fd.get(), 0));
  ASSERT_THAT(q, SyscallSucceeds());
  q[0] = 'z';
  char c;
  ASSERT_THAT(pread(fd.get(), &c, 1, 0), SyscallSucceedsWithValue(1));
  EXPECT_EQ(c, 'x');
  munmap(q, kPage);
}

TEST(MemfdTest, SealWriteWithWritableMappingIsEbusy) {
  FileDescriptor fd = Sealable(kPage);
  void* p =
      mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  ASSERT_THAT(p, SyscallSucceeds());
  EXPECT_THAT(fcntl(fd.get(), F_ADD_SEALS, F_SEAL_WRITE),
              SyscallFailsWithErrno(EBUSY));
  ASSERT_THAT(munmap(p, kPage), SyscallSucceeds());
  EXPECT_THAT(fcntl(fd.get(), F_ADD_SEALS, F_SEAL_WRITE), SyscallSucceeds());
}

TEST(MemfdTest, SealFutureWriteKeepsExistingMappings) {
  FileDescriptor fd = Sealable(kPage);
  char* p = static_cast<char*>(mmap(nullptr, kPage, PROT_READ | PROT_WRITE,
                                    MAP_SHARED, fd.get(), 0));
  ASSERT_THAT(p, SyscallSucceeds());
  ASSERT_THAT(fcntl(fd.get(), F_ADD_SEALS, F_SEAL_FUTURE_WRITE),
              SyscallSucceeds());
  p[0] = 'm';
  char c;
  ASSERT_THAT(pread(fd.get(), &c, 1, 0), SyscallSucceedsWithValue(1));
  EXPECT_EQ(c, 'm');
  EXPECT_THAT(pwrite(fd.get(), "y", 1, 0), SyscallFailsWithErrno(EPERM));
  EXPECT_THAT(mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_SHARED,
                   fd.get(), 0),
              SyscallFailsWithErrno(EPERM));
  munmap(p, kPage);
}

TEST(MemfdTest, SealGrow) {
  FileDescriptor fd = Sealable(10);
  ASSERT_THAT(fcntl(fd.get(), F_ADD_SEALS, F_SEAL_GROW), SyscallSucceeds());
  EXPECT_THAT(pwrite(fd.get(), "ab", 2, 8), SyscallSucceedsWithValue(2));
  EXPECT_THAT(pwrite(fd.get(), "abc", 3, 8), SyscallFailsWithErrno(EPERM));
}

TEST(MemfdTest, SealShrinkAndGrowStopTruncate) {
  FileDescriptor fd = Sealable(kPage);
  ASSERT_THAT(fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK), SyscallSucceeds());
  EXPECT_THAT(ftruncate(fd.get(), 10), SyscallFailsWithErrno(EPERM));
  EXPECT_THAT(ftruncate(fd.get(), 2 * kPage), SyscallSucceeds());
  ASSERT_THAT(fcntl(fd.get(), F_ADD_SEALS, F_SEAL_GROW), SyscallSucceeds());
  EXPECT_THAT(ftruncate(fd.get(), 3 * kPage), SyscallFailsWithErrno(EPERM));
}

TEST(MemfdTest, NoexecSeal) {
  FileDescriptor fd(MemfdCreate("noexec", MFD_NOEXEC_SEAL));
  ASSERT_TRUE(fd.valid());
  int seals = fcntl(fd.get(), F_GET_SEALS);
  EXPECT_TRUE(seals & F_SEAL_EXEC);
  EXPECT_FALSE(seals & F_SEAL_SEAL);
}

TEST(MemfdTest, SealsOnOtherFilesAreEinval) {
  int fds[2];
  ASSERT_THAT(pipe(fds), SyscallSucceeds());
  EXPECT_THAT(fcntl(fds[0], F_GET_SEALS), SyscallFailsWithErrno(EINVAL));
  close(fds[0]);
  close(fds[1]);
}

// A name is bytes, not text: /proc shows it unchanged in the descriptor's
// link and in the maps of a mapping of it.
TEST(MemfdTest, NameThatIsNotUtf8) {
  const char name[] = "\xff\xfe-m";
  FileDescriptor fd(MemfdCreate(name, 0));
  ASSERT_TRUE(fd.valid()) << strerror(errno);
  const std::string want = std::string("/memfd:") + name + " (deleted)";
  char link[256] = {};
  const std::string path = "/proc/self/fd/" + std::to_string(fd.get());
  ASSERT_THAT(readlink(path.c_str(), link, sizeof(link)),
              SyscallSucceedsWithValue(static_cast<ssize_t>(want.size())));
  EXPECT_EQ(std::string(link), want);

  ASSERT_THAT(ftruncate(fd.get(), kPage), SyscallSucceeds());
  void* m = mmap(nullptr, kPage, PROT_READ, MAP_SHARED, fd.get(), 0);
  ASSERT_NE(m, MAP_FAILED);
  std::string maps;
  FileDescriptor f(open("/proc/self/maps", O_RDONLY));
  ASSERT_TRUE(f.valid());
  char buf[4096];
  ssize_t n;
  while ((n = read(f.get(), buf, sizeof(buf))) > 0) maps.append(buf, n);
  EXPECT_NE(maps.find(want), std::string::npos) << maps;
  munmap(m, kPage);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
