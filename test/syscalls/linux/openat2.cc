// openat2(2): struct open_how and the RESOLVE_* flags.

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/fs_util.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

int Openat2(int dirfd, const std::string& path, uint64_t flags, uint64_t mode,
            uint64_t resolve, size_t size = sizeof(struct open_how)) {
  struct open_how how = {};
  how.flags = flags;
  how.mode = mode;
  how.resolve = resolve;
  return syscall(SYS_openat2, dirfd, path.c_str(), &how, size);
}

class Openat2Test : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    // dir/top, dir/sub/inner, dir/sub/up -> ../top, dir/sub/abs -> /,
    // dir/sub/self -> inner.
    ASSERT_TRUE(WriteFile(dir_.Join("top"), "t"));
    ASSERT_THAT(mkdir(dir_.Join("sub").c_str(), 0755), SyscallSucceeds());
    ASSERT_TRUE(WriteFile(dir_.Join("sub/inner"), "i"));
    ASSERT_THAT(symlink("../top", dir_.Join("sub/up").c_str()), SyscallSucceeds());
    ASSERT_THAT(symlink("/", dir_.Join("sub/abs").c_str()), SyscallSucceeds());
    ASSERT_THAT(symlink("inner", dir_.Join("sub/self").c_str()), SyscallSucceeds());
    sub_ = FileDescriptor(open(dir_.Join("sub").c_str(), O_RDONLY | O_DIRECTORY));
    ASSERT_THAT(sub_.get(), SyscallSucceeds());
  }
  TempDir dir_;
  FileDescriptor sub_;
};

TEST_F(Openat2Test, PlainOpen) {
  FileDescriptor fd(Openat2(sub_.get(), "inner", O_RDONLY, 0, 0));
  EXPECT_THAT(fd.get(), SyscallSucceeds());
  FileDescriptor c(Openat2(sub_.get(), "new", O_CREAT | O_RDWR, 0600, 0));
  EXPECT_THAT(c.get(), SyscallSucceeds());
}

TEST_F(Openat2Test, BadHow) {
  EXPECT_THAT(Openat2(sub_.get(), "inner", O_RDONLY, 0, 0, 8),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(Openat2(sub_.get(), "inner", O_RDONLY, 0, 0, 8192),
              SyscallFailsWithErrno(E2BIG));
  EXPECT_THAT(Openat2(sub_.get(), "inner", 1ull << 40, 0, 0),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(Openat2(sub_.get(), "inner", O_RDONLY, 0644, 0),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(Openat2(sub_.get(), "x", O_CREAT | O_RDWR, 010000, 0),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(Openat2(sub_.get(), "inner", O_RDONLY, 0, 0x1000),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(Openat2(sub_.get(), "inner", O_RDONLY, 0,
                      RESOLVE_BENEATH | RESOLVE_IN_ROOT),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(Openat2(sub_.get(), "inner", O_PATH | O_RDWR, 0, 0),
              SyscallFailsWithErrno(EINVAL));
  // A larger struct with zeroes after the known fields is accepted.
  char big[64] = {};
  struct open_how how = {};
  how.flags = O_RDONLY;
  memcpy(big, &how, sizeof(how));
  FileDescriptor fd(syscall(SYS_openat2, sub_.get(), "inner", big, sizeof(big)));
  EXPECT_THAT(fd.get(), SyscallSucceeds());
  big[40] = 1;
  EXPECT_THAT(syscall(SYS_openat2, sub_.get(), "inner", big, sizeof(big)),
              SyscallFailsWithErrno(E2BIG));
}

TEST_F(Openat2Test, Beneath) {
  FileDescriptor ok(Openat2(sub_.get(), "self", O_RDONLY, 0, RESOLVE_BENEATH));
  EXPECT_THAT(ok.get(), SyscallSucceeds());
  EXPECT_THAT(Openat2(sub_.get(), "../top", O_RDONLY, 0, RESOLVE_BENEATH),
              SyscallFailsWithErrno(EXDEV));
  EXPECT_THAT(Openat2(sub_.get(), "up", O_RDONLY, 0, RESOLVE_BENEATH),
              SyscallFailsWithErrno(EXDEV));
  EXPECT_THAT(Openat2(sub_.get(), "abs", O_RDONLY, 0, RESOLVE_BENEATH),
              SyscallFailsWithErrno(EXDEV));
  EXPECT_THAT(Openat2(sub_.get(), "/", O_RDONLY, 0, RESOLVE_BENEATH),
              SyscallFailsWithErrno(EXDEV));
}

TEST_F(Openat2Test, InRoot) {
  // "/" and ".." stay inside dirfd.
  FileDescriptor a(Openat2(sub_.get(), "/inner", O_RDONLY, 0, RESOLVE_IN_ROOT));
  EXPECT_THAT(a.get(), SyscallSucceeds());
  FileDescriptor b(Openat2(sub_.get(), "../../inner", O_RDONLY, 0, RESOLVE_IN_ROOT));
  EXPECT_THAT(b.get(), SyscallSucceeds());
  EXPECT_THAT(Openat2(sub_.get(), "up", O_RDONLY, 0, RESOLVE_IN_ROOT),
              SyscallFailsWithErrno(ENOENT));
  FileDescriptor c(Openat2(sub_.get(), "abs/inner", O_RDONLY, 0, RESOLVE_IN_ROOT));
  EXPECT_THAT(c.get(), SyscallSucceeds());
}

TEST_F(Openat2Test, NoSymlinks) {
  EXPECT_THAT(Openat2(sub_.get(), "self", O_RDONLY, 0, RESOLVE_NO_SYMLINKS),
              SyscallFailsWithErrno(ELOOP));
  // O_PATH|O_NOFOLLOW still opens the link itself.
  FileDescriptor p(Openat2(sub_.get(), "self", O_PATH | O_NOFOLLOW, 0,
                           RESOLVE_NO_SYMLINKS));
  EXPECT_THAT(p.get(), SyscallSucceeds());
}

TEST_F(Openat2Test, NoXdevAndCached) {
  FileDescriptor a(Openat2(sub_.get(), "inner", O_RDONLY, 0, RESOLVE_NO_XDEV));
  EXPECT_THAT(a.get(), SyscallSucceeds());
  // "/" and the test directory may be on different mounts natively; in the
  // sandbox /tmp certainly is.
  if (IsRunningOnSandbox()) {
    FileDescriptor root(open("/", O_PATH));
    EXPECT_THAT(Openat2(root.get(), "tmp/.", O_PATH, 0, RESOLVE_NO_XDEV),
                SyscallFailsWithErrno(EXDEV));
  }
  EXPECT_THAT(Openat2(sub_.get(), "x", O_CREAT | O_RDWR, 0600, RESOLVE_CACHED),
              SyscallFailsWithErrno(EAGAIN));
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
