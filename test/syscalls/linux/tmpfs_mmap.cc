// mmap(2) of files in the VFS: tmpfs files share their pages with read(2) and
// write(2); truncation makes pages past the end fault with SIGBUS; files of
// the host root map read-only.

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/fs_util.h"
#include "test/util/signal_util.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

constexpr size_t kPage = 4096;

class MmapFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    file_ = dir_.Join("file");
    ASSERT_TRUE(WriteFile(file_, std::string(2 * kPage, 'a')));
    fd_ = FileDescriptor(open(file_.c_str(), O_RDWR));
    ASSERT_THAT(fd_.get(), SyscallSucceeds());
  }
  TempDir dir_;
  std::string file_;
  FileDescriptor fd_;
};

TEST_F(MmapFileTest, SharedMappingIsCoherentWithReadAndWrite) {
  void* p = mmap(nullptr, 2 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd_.get(), 0);
  ASSERT_THAT(p, SyscallSucceeds());
  char* c = static_cast<char*>(p);
  EXPECT_EQ(c[kPage + 5], 'a');
  memcpy(c + 10, "mapped", 6);
  char buf[6];
  ASSERT_THAT(pread(fd_.get(), buf, 6, 10), SyscallSucceedsWithValue(6));
  EXPECT_EQ(std::string(buf, 6), "mapped");
  ASSERT_THAT(pwrite(fd_.get(), "written", 7, kPage), SyscallSucceedsWithValue(7));
  EXPECT_EQ(std::string(c + kPage, 7), "written");
  ASSERT_THAT(munmap(p, 2 * kPage), SyscallSucceeds());
  EXPECT_EQ(ReadFile(file_).substr(10, 6), "mapped");
}

TEST_F(MmapFileTest, PrivateMappingDoesNotWriteTheFile) {
  void* p = mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd_.get(), 0);
  ASSERT_THAT(p, SyscallSucceeds());
  static_cast<char*>(p)[0] = 'z';
  EXPECT_EQ(ReadFile(file_)[0], 'a');
  ASSERT_THAT(munmap(p, kPage), SyscallSucceeds());
}

TEST_F(MmapFileTest, TruncatedPagesFaultWithSigbus) {
  void* p = mmap(nullptr, 2 * kPage, PROT_READ, MAP_SHARED, fd_.get(), 0);
  ASSERT_THAT(p, SyscallSucceeds());
  char* c = static_cast<char*>(p);
  EXPECT_FALSE(ReadFaults(c + kPage).has_value());
  ASSERT_THAT(ftruncate(fd_.get(), 100), SyscallSucceeds());
  // The rest of the last page reads as zeroes; the page after faults.
  EXPECT_EQ(c[200], '\0');
  auto fault = ReadFaults(c + kPage);
  ASSERT_TRUE(fault.has_value());
  EXPECT_EQ(fault->signo, SIGBUS);
  ASSERT_THAT(munmap(p, 2 * kPage), SyscallSucceeds());
}

TEST_F(MmapFileTest, AccessModes) {
  FileDescriptor ro(open(file_.c_str(), O_RDONLY));
  EXPECT_THAT(mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_SHARED, ro.get(), 0),
              SyscallFailsWithErrno(EACCES));
  void* p = mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE, ro.get(), 0);
  EXPECT_THAT(p, SyscallSucceeds());
  munmap(p, kPage);
  FileDescriptor d(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
  EXPECT_THAT(mmap(nullptr, kPage, PROT_READ, MAP_PRIVATE, d.get(), 0),
              SyscallFailsWithErrno(ENODEV));
}

TEST_F(MmapFileTest, ExecutableFromTheRootMapsReadOnly) {
  // The test binary itself lives in the (host) root.
  FileDescriptor exe(open("/proc/self/exe", O_RDONLY));
  if (!exe.valid()) {
    // No /proc in the sandbox yet: map a file every host has.
    exe = FileDescriptor(open("/bin/sh", O_RDONLY));
  }
  ASSERT_THAT(exe.get(), SyscallSucceeds());
  void* p = mmap(nullptr, kPage, PROT_READ, MAP_PRIVATE, exe.get(), 0);
  ASSERT_THAT(p, SyscallSucceeds());
  EXPECT_EQ(memcmp(p, "\177ELF", 4), 0);
  ASSERT_THAT(munmap(p, kPage), SyscallSucceeds());
}

TEST_F(MmapFileTest, DevZeroSharedIsSharedMemory) {
  FileDescriptor z(open("/dev/zero", O_RDWR));
  ASSERT_THAT(z.get(), SyscallSucceeds());
  void* p = mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_SHARED, z.get(), 0);
  ASSERT_THAT(p, SyscallSucceeds());
  EXPECT_EQ(static_cast<char*>(p)[100], 0);
  static_cast<char*>(p)[100] = 1;
  ASSERT_THAT(munmap(p, kPage), SyscallSucceeds());
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
