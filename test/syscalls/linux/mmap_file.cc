// mmap(2) of files: shared mappings coherent with read(2) and write(2),
// private copy-on-write mappings, SIGBUS past the end of the file, msync(2).
// The files are memfds, which the sandbox has without a file system.

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/signal_util.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

const size_t kPage = sysconf(_SC_PAGESIZE);

char* Offset(void* p, size_t bytes) { return static_cast<char*>(p) + bytes; }

// NewMemfd returns a memfd holding `size` bytes, byte i being 'a' + i % 26.
FileDescriptor NewMemfd(size_t size, unsigned flags = 0) {
  FileDescriptor fd(
      static_cast<int>(syscall(SYS_memfd_create, "mmap_file_test", flags)));
  EXPECT_TRUE(fd.valid()) << strerror(errno);
  std::string data(size, '\0');
  for (size_t i = 0; i < size; i++) data[i] = 'a' + i % 26;
  if (size) {
    EXPECT_THAT(pwrite(fd.get(), data.data(), size, 0),
                SyscallSucceedsWithValue(static_cast<ssize_t>(size)));
  }
  return fd;
}

std::string Pread(int fd, size_t len, off_t off) {
  std::string buf(len, '\0');
  ssize_t n = pread(fd, buf.data(), len, off);
  EXPECT_THAT(n, SyscallSucceeds());
  buf.resize(n < 0 ? 0 : n);
  return buf;
}

TEST(MmapFileTest, SharedMappingSeesTheFile) {
  FileDescriptor fd = NewMemfd(2 * kPage);
  void* p = mmap(nullptr, 2 * kPage, PROT_READ, MAP_SHARED, fd.get(), 0);
  ASSERT_THAT(p, SyscallSucceeds());
  EXPECT_EQ(std::string(static_cast<char*>(p), 4), "abcd");
  EXPECT_EQ(*Offset(p, kPage), 'a' + kPage % 26);
  ASSERT_THAT(munmap(p, 2 * kPage), SyscallSucceeds());
}

TEST(MmapFileTest, SharedMappingIsCoherentWithReadAndWrite) {
  FileDescriptor fd = NewMemfd(2 * kPage);
  char* p = static_cast<char*>(mmap(nullptr, 2 * kPage, PROT_READ | PROT_WRITE,
                                    MAP_SHARED, fd.get(), 0));
  ASSERT_THAT(p, SyscallSucceeds());

  // A store through the mapping is seen by read.
  memcpy(p + 10, "STORE", 5);
  EXPECT_EQ(Pread(fd.get(), 5, 10), "STORE");

  // A write to the file is seen through the mapping.
  ASSERT_THAT(pwrite(fd.get(), "WRITE", 5, kPage + 1),
              SyscallSucceedsWithValue(5));
  EXPECT_EQ(std::string(p + kPage + 1, 5), "WRITE");

  // And by a second mapping of the same file.
  char* q = static_cast<char*>(
      mmap(nullptr, kPage, PROT_READ, MAP_SHARED, fd.get(), kPage));
  ASSERT_THAT(q, SyscallSucceeds());
  EXPECT_EQ(std::string(q + 1, 5), "WRITE");
  p[kPage + 1] = 'w';
  EXPECT_EQ(q[1], 'w');
  ASSERT_THAT(munmap(q, kPage), SyscallSucceeds());
  ASSERT_THAT(munmap(p, 2 * kPage), SyscallSucceeds());
}

TEST(MmapFileTest, OffsetSelectsThePages) {
  FileDescriptor fd = NewMemfd(3 * kPage);
  char* p = static_cast<char*>(
      mmap(nullptr, kPage, PROT_READ, MAP_SHARED, fd.get(), 2 * kPage));
  ASSERT_THAT(p, SyscallSucceeds());
  EXPECT_EQ(p[0], static_cast<char>('a' + (2 * kPage) % 26));
  ASSERT_THAT(munmap(p, kPage), SyscallSucceeds());
}

TEST(MmapFileTest, PrivateMappingIsCopyOnWrite) {
  FileDescriptor fd = NewMemfd(2 * kPage);
  char* p = static_cast<char*>(mmap(nullptr, 2 * kPage, PROT_READ | PROT_WRITE,
                                    MAP_PRIVATE, fd.get(), 0));
  ASSERT_THAT(p, SyscallSucceeds());
  p[0] = 'X';
  // The file is unchanged, the mapping has its own copy.
  EXPECT_EQ(Pread(fd.get(), 1, 0), "a");
  EXPECT_EQ(p[0], 'X');
  // A page not yet written still shows the file, including later writes.
  ASSERT_THAT(pwrite(fd.get(), "Z", 1, kPage), SyscallSucceedsWithValue(1));
  EXPECT_EQ(p[kPage], 'Z');
  // Once written, it no longer follows the file.
  p[kPage + 1] = 'Y';
  ASSERT_THAT(pwrite(fd.get(), "Q", 1, kPage), SyscallSucceedsWithValue(1));
  EXPECT_EQ(p[kPage], 'Z');
  ASSERT_THAT(munmap(p, 2 * kPage), SyscallSucceeds());
}

TEST(MmapFileTest, PastEndOfFileIsSigbus) {
  FileDescriptor fd = NewMemfd(kPage + 100);
  char* p = static_cast<char*>(
      mmap(nullptr, 4 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0));
  ASSERT_THAT(p, SyscallSucceeds());
  // The partial last page is readable; past the end of the file it is zero.
  EXPECT_FALSE(ReadFaults(p + kPage + 200).has_value());
  EXPECT_EQ(p[kPage + 99], static_cast<char>('a' + (kPage + 99) % 26));
  EXPECT_EQ(p[kPage + 100], 0);
  // A store there is not part of the file.
  p[kPage + 200] = 'x';
  EXPECT_EQ(Pread(fd.get(), 200, kPage).size(), 100u);

  std::optional<Fault> f = ReadFaults(p + 2 * kPage + 7);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->signo, SIGBUS);
  EXPECT_EQ(f->code, BUS_ADRERR);
  EXPECT_EQ(f->addr, p + 2 * kPage + 7);
  f = WriteFaults(p + 3 * kPage);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->signo, SIGBUS);

  // The file grows: the pages become accessible.
  ASSERT_THAT(pwrite(fd.get(), "G", 1, 3 * kPage), SyscallSucceedsWithValue(1));
  EXPECT_FALSE(ReadFaults(p + 2 * kPage).has_value());
  EXPECT_EQ(p[3 * kPage], 'G');
  ASSERT_THAT(munmap(p, 4 * kPage), SyscallSucceeds());
}

TEST(MmapFileTest, PrivateMappingPastEndOfFileIsSigbus) {
  FileDescriptor fd = NewMemfd(kPage);
  char* p = static_cast<char*>(mmap(nullptr, 2 * kPage, PROT_READ | PROT_WRITE,
                                    MAP_PRIVATE, fd.get(), 0));
  ASSERT_THAT(p, SyscallSucceeds());
  std::optional<Fault> f = WriteFaults(p + kPage);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->signo, SIGBUS);
  EXPECT_EQ(f->addr, p + kPage);
  ASSERT_THAT(munmap(p, 2 * kPage), SyscallSucceeds());
}

TEST(MmapFileTest, TruncateMakesPagesSigbus) {
  FileDescriptor fd = NewMemfd(3 * kPage);
  char* p = static_cast<char*>(
      mmap(nullptr, 3 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0));
  ASSERT_THAT(p, SyscallSucceeds());
  char* priv = static_cast<char*>(mmap(
      nullptr, 3 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd.get(), 0));
  ASSERT_THAT(priv, SyscallSucceeds());
  p[2 * kPage] = 'x';
  priv[2 * kPage] = 'y';  // a private copy; truncate drops it too
  ASSERT_THAT(ftruncate(fd.get(), kPage + 10), SyscallSucceeds());
  EXPECT_EQ(p[kPage + 9], static_cast<char>('a' + (kPage + 9) % 26));
  EXPECT_EQ(p[kPage + 10], 0);
  std::optional<Fault> f = ReadFaults(p + 2 * kPage);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->signo, SIGBUS);
  f = ReadFaults(priv + 2 * kPage);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->signo, SIGBUS);
  munmap(p, 3 * kPage);
  munmap(priv, 3 * kPage);
}

TEST(MmapFileTest, SharedWritableNeedsAWritableFile) {
  FileDescriptor fd = NewMemfd(kPage);
  std::string path = "/proc/self/fd/" + std::to_string(fd.get());
  FileDescriptor ro(open(path.c_str(), O_RDONLY));
  ASSERT_TRUE(ro.valid());
  EXPECT_THAT(mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_SHARED,
                   ro.get(), 0),
              SyscallFailsWithErrno(EACCES));
  // Read-only shared is fine, but cannot be made writable.
  void* p = mmap(nullptr, kPage, PROT_READ, MAP_SHARED, ro.get(), 0);
  ASSERT_THAT(p, SyscallSucceeds());
  EXPECT_THAT(mprotect(p, kPage, PROT_READ | PROT_WRITE),
              SyscallFailsWithErrno(EACCES));
  munmap(p, kPage);
  // A private writable mapping of a read-only file is fine.
  p = mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE, ro.get(), 0);
  ASSERT_THAT(p, SyscallSucceeds());
  munmap(p, kPage);

  FileDescriptor wo(open(path.c_str(), O_WRONLY));
  ASSERT_TRUE(wo.valid());
  EXPECT_THAT(mmap(nullptr, kPage, PROT_READ, MAP_PRIVATE, wo.get(), 0),
              SyscallFailsWithErrno(EACCES));
}

TEST(MmapFileTest, FlagChecks) {
  FileDescriptor fd = NewMemfd(kPage);
  // File mappings cannot grow down.
  EXPECT_THAT(mmap(nullptr, kPage, PROT_READ, MAP_PRIVATE | MAP_GROWSDOWN,
                   fd.get(), 0),
              SyscallFailsWithErrno(EINVAL));
  // MAP_SHARED_VALIDATE refuses flags outside the legacy set.
  EXPECT_THAT(mmap(nullptr, kPage, PROT_READ, MAP_SHARED_VALIDATE | MAP_SYNC,
                   fd.get(), 0),
              SyscallFailsWithErrno(EOPNOTSUPP));
  void* p = mmap(nullptr, kPage, PROT_READ, MAP_SHARED_VALIDATE, fd.get(), 0);
  ASSERT_THAT(p, SyscallSucceeds());
  munmap(p, kPage);
  // Unaligned offsets are refused.
  EXPECT_THAT(mmap(nullptr, kPage, PROT_READ, MAP_SHARED, fd.get(), 1),
              SyscallFailsWithErrno(EINVAL));
}

// The mapping keeps the file alive after the descriptor is closed.
TEST(MmapFileTest, MappingOutlivesTheDescriptor) {
  char* p;
  {
    FileDescriptor fd = NewMemfd(kPage);
    p = static_cast<char*>(mmap(nullptr, kPage, PROT_READ | PROT_WRITE,
                                MAP_SHARED, fd.get(), 0));
    ASSERT_THAT(p, SyscallSucceeds());
  }
  EXPECT_EQ(p[0], 'a');
  p[0] = 'b';
  EXPECT_EQ(p[0], 'b');
  ASSERT_THAT(munmap(p, kPage), SyscallSucceeds());
}

TEST(MsyncTest, SyncsAndChecksArguments) {
  FileDescriptor fd = NewMemfd(2 * kPage);
  char* p = static_cast<char*>(mmap(nullptr, 2 * kPage, PROT_READ | PROT_WRITE,
                                    MAP_SHARED, fd.get(), 0));
  ASSERT_THAT(p, SyscallSucceeds());
  p[0] = 'S';
  EXPECT_THAT(msync(p, 2 * kPage, MS_SYNC), SyscallSucceeds());
  EXPECT_EQ(Pread(fd.get(), 1, 0), "S");
  EXPECT_THAT(msync(p, kPage, MS_ASYNC), SyscallSucceeds());
  EXPECT_THAT(msync(p, kPage, MS_INVALIDATE), SyscallSucceeds());
  EXPECT_THAT(msync(p, 0, MS_SYNC), SyscallSucceeds());
  EXPECT_THAT(msync(p + 1, kPage, MS_SYNC), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(msync(p, kPage, MS_SYNC | MS_ASYNC),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(msync(p, kPage, 0x100), SyscallFailsWithErrno(EINVAL));
  ASSERT_THAT(munmap(p + kPage, kPage), SyscallSucceeds());
  // A hole in the range: ENOMEM, after syncing the rest.
  EXPECT_THAT(msync(p, 2 * kPage, MS_SYNC), SyscallFailsWithErrno(ENOMEM));
  ASSERT_THAT(munmap(p, kPage), SyscallSucceeds());
}

TEST(MsyncTest, AnonymousMemorySucceeds) {
  void* p = mmap(nullptr, kPage, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_THAT(p, SyscallSucceeds());
  EXPECT_THAT(msync(p, kPage, MS_SYNC), SyscallSucceeds());
  ASSERT_THAT(mlock(p, kPage), SyscallSucceeds());
  EXPECT_THAT(msync(p, kPage, MS_INVALIDATE), SyscallFailsWithErrno(EBUSY));
  ASSERT_THAT(munmap(p, kPage), SyscallSucceeds());
}

// read(2) and write(2) with a buffer that runs into unmapped memory copy
// what they can.
TEST(MmapFileTest, PartialCopiesAtABadAddress) {
  FileDescriptor fd = NewMemfd(2 * kPage);
  char* p = static_cast<char*>(mmap(nullptr, 2 * kPage, PROT_READ | PROT_WRITE,
                                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_THAT(p, SyscallSucceeds());
  ASSERT_THAT(munmap(p + kPage, kPage), SyscallSucceeds());
  EXPECT_THAT(pread(fd.get(), p + kPage - 10, 100, 0),
              SyscallSucceedsWithValue(10));
  EXPECT_EQ(std::string(p + kPage - 10, 10), "abcdefghij");
  memcpy(p + kPage - 4, "WXYZ", 4);
  EXPECT_THAT(pwrite(fd.get(), p + kPage - 4, 100, 0),
              SyscallSucceedsWithValue(4));
  EXPECT_EQ(Pread(fd.get(), 5, 0), "WXYZe");
  // Nothing readable at all: EFAULT.
  EXPECT_THAT(pread(fd.get(), p + kPage, 10, 0), SyscallFailsWithErrno(EFAULT));
  EXPECT_THAT(pwrite(fd.get(), p + kPage, 10, 0),
              SyscallFailsWithErrno(EFAULT));
  ASSERT_THAT(munmap(p, kPage), SyscallSucceeds());
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
