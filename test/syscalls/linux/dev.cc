// The memory devices: /dev/null, /dev/zero, /dev/full, /dev/random,
// /dev/urandom; and mknod(2) of device nodes.

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/file_descriptor.h"
#include "test/util/fs_util.h"
#include "test/util/multiprocess_util.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

TEST(DevTest, Null) {
  FileDescriptor fd(open("/dev/null", O_RDWR));
  ASSERT_THAT(fd.get(), SyscallSucceeds());
  EXPECT_THAT(write(fd.get(), "abc", 3), SyscallSucceedsWithValue(3));
  char c;
  EXPECT_THAT(read(fd.get(), &c, 1), SyscallSucceedsWithValue(0));
  struct stat st;
  ASSERT_THAT(fstat(fd.get(), &st), SyscallSucceeds());
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(1, 3));
  EXPECT_THAT(lseek(fd.get(), 100, SEEK_SET), SyscallSucceedsWithValue(0));
}

TEST(DevTest, Zero) {
  FileDescriptor fd(open("/dev/zero", O_RDWR));
  ASSERT_THAT(fd.get(), SyscallSucceeds());
  char buf[16];
  memset(buf, 'x', sizeof(buf));
  EXPECT_THAT(read(fd.get(), buf, sizeof(buf)), SyscallSucceedsWithValue(16));
  EXPECT_EQ(std::string(buf, 16), std::string(16, '\0'));
  EXPECT_THAT(write(fd.get(), buf, 4), SyscallSucceedsWithValue(4));
}

TEST(DevTest, Full) {
  FileDescriptor fd(open("/dev/full", O_RDWR));
  ASSERT_THAT(fd.get(), SyscallSucceeds());
  EXPECT_THAT(write(fd.get(), "x", 1), SyscallFailsWithErrno(ENOSPC));
  char c = 'x';
  EXPECT_THAT(read(fd.get(), &c, 1), SyscallSucceedsWithValue(1));
  EXPECT_EQ(c, '\0');
}

TEST(DevTest, Urandom) {
  FileDescriptor fd(open("/dev/urandom", O_RDONLY));
  ASSERT_THAT(fd.get(), SyscallSucceeds());
  char a[32] = {}, b[32] = {};
  EXPECT_THAT(read(fd.get(), a, sizeof(a)), SyscallSucceedsWithValue(32));
  EXPECT_THAT(read(fd.get(), b, sizeof(b)), SyscallSucceedsWithValue(32));
  EXPECT_NE(memcmp(a, b, sizeof(a)), 0);
  FileDescriptor r(open("/dev/random", O_RDONLY));
  EXPECT_THAT(read(r.get(), a, sizeof(a)), SyscallSucceedsWithValue(32));
}

TEST(DevTest, MknodDeviceNode) {
  TempDir dir;
  std::string node = dir.Join("null2");
  ASSERT_THAT(mknod(node.c_str(), S_IFCHR | 0666, makedev(1, 3)), SyscallSucceeds());
  struct stat st;
  ASSERT_THAT(stat(node.c_str(), &st), SyscallSucceeds());
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(1, 3));
  // The mount holding the test directory may forbid devices (nodev).
  int fd = open(node.c_str(), O_WRONLY);
  if (fd >= 0) {
    EXPECT_THAT(write(fd, "x", 1), SyscallSucceedsWithValue(1));
    close(fd);
  } else {
    EXPECT_EQ(errno, EACCES);
  }
}

TEST(DevTest, MknodKinds) {
  TempDir dir;
  EXPECT_THAT(mknod(dir.Join("reg").c_str(), S_IFREG | 0644, 0), SyscallSucceeds());
  EXPECT_THAT(mknod(dir.Join("zero").c_str(), 0644, 0), SyscallSucceeds());
  struct stat st;
  ASSERT_THAT(stat(dir.Join("zero").c_str(), &st), SyscallSucceeds());
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_THAT(mknod(dir.Join("fifo").c_str(), S_IFIFO | 0644, 0), SyscallSucceeds());
  EXPECT_THAT(mknod(dir.Join("dir").c_str(), S_IFDIR | 0755, 0),
              SyscallFailsWithErrno(EPERM));
  EXPECT_THAT(mknod(dir.Join("bad").c_str(), 0170000 | 0644, 0),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(mknod(dir.Join("reg").c_str(), S_IFREG | 0644, 0),
              SyscallFailsWithErrno(EEXIST));
}

TEST(DevTest, MknodDeviceNeedsCapMknod) {
  TempDir pub("/tmp");
  ASSERT_THAT(chmod(pub.path().c_str(), 0777), SyscallSucceeds());
  std::string node = pub.Join("n");
  EXPECT_EQ(RunAsNobody([&] {
              return mknod(node.c_str(), S_IFCHR | 0666, makedev(1, 3)) ? errno : 0;
            }),
            EPERM);
}

TEST(DevTest, FdAndStdioLinks) {
  char buf[64];
  ssize_t n = readlink("/dev/fd", buf, sizeof(buf));
  ASSERT_THAT(n, SyscallSucceeds());
  EXPECT_EQ(std::string(buf, n), "/proc/self/fd");
  const char* names[] = {"/dev/stdin", "/dev/stdout", "/dev/stderr"};
  for (int i = 0; i < 3; i++) {
    n = readlink(names[i], buf, sizeof(buf));
    ASSERT_THAT(n, SyscallSucceeds());
    EXPECT_EQ(std::string(buf, n), "/proc/self/fd/" + std::to_string(i));
  }
  // /dev/fd/N is the open file N.
  int p[2];
  ASSERT_THAT(pipe(p), SyscallSucceeds());
  FileDescriptor r(p[0]), w(p[1]);
  FileDescriptor w2(
      open(("/dev/fd/" + std::to_string(w.get())).c_str(), O_WRONLY));
  ASSERT_THAT(w2.get(), SyscallSucceeds());
  ASSERT_THAT(write(w2.get(), "q", 1), SyscallSucceedsWithValue(1));
  char c;
  EXPECT_THAT(read(r.get(), &c, 1), SyscallSucceedsWithValue(1));
  EXPECT_EQ(c, 'q');
  struct stat a, b;
  ASSERT_THAT(stat(("/dev/fd/" + std::to_string(r.get())).c_str(), &a),
              SyscallSucceeds());
  ASSERT_THAT(fstat(r.get(), &b), SyscallSucceeds());
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_TRUE(S_ISFIFO(a.st_mode));
  // stdout reopened by name writes where stdout goes.
  FileDescriptor out(open("/dev/stderr", O_WRONLY));
  ASSERT_THAT(out.get(), SyscallSucceeds());
  EXPECT_THAT(write(out.get(), "", 0), SyscallSucceedsWithValue(0));
}

TEST(DevTest, TtyWithoutControllingTerminal) {
  // In a new session there is no controlling terminal: /dev/tty is ENXIO.
  pid_t pid = VforkRun([] {
    if (syscall(SYS_setsid) < 0) return 1;
    int fd = syscall(SYS_openat, AT_FDCWD, "/dev/tty", O_RDWR);
    return fd < 0 && errno == ENXIO ? 0 : 2;
  });
  ASSERT_THAT(pid, SyscallSucceeds());
  EXPECT_EQ(WaitForStatus(pid), 0);
  struct stat st;
  ASSERT_THAT(stat("/dev/tty", &st), SyscallSucceeds());
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(5, 0));
  EXPECT_EQ(st.st_mode & 0777, 0666);
}

TEST(DevTest, Shm) {
  struct stat st;
  ASSERT_THAT(stat("/dev/shm", &st), SyscallSucceeds());
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 01777);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
