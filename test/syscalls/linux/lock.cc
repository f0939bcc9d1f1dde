// Advisory locks: fcntl(2) F_GETLK/F_SETLK/F_SETLKW and the OFD forms, and
// flock(2).

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/fs_util.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

struct flock Lock(short type, off_t start, off_t len, short whence = SEEK_SET) {
  struct flock fl = {};
  fl.l_type = type;
  fl.l_whence = whence;
  fl.l_start = start;
  fl.l_len = len;
  return fl;
}

class LockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    file_ = dir_.Join("file");
    ASSERT_TRUE(WriteFile(file_, std::string(100, 'x')));
    fd_ = FileDescriptor(open(file_.c_str(), O_RDWR));
    ASSERT_THAT(fd_.get(), SyscallSucceeds());
  }
  TempDir dir_;
  std::string file_;
  FileDescriptor fd_;
};

TEST_F(LockTest, SetAndTestOwnLocks) {
  struct flock fl = Lock(F_WRLCK, 0, 10);
  ASSERT_THAT(fcntl(fd_.get(), F_SETLK, &fl), SyscallSucceeds());
  // One's own locks never conflict.
  struct flock q = Lock(F_WRLCK, 0, 0);
  ASSERT_THAT(fcntl(fd_.get(), F_GETLK, &q), SyscallSucceeds());
  EXPECT_EQ(q.l_type, F_UNLCK);
  fl = Lock(F_UNLCK, 0, 0);
  EXPECT_THAT(fcntl(fd_.get(), F_SETLK, &fl), SyscallSucceeds());
}

TEST_F(LockTest, AccessModeMustMatch) {
  FileDescriptor ro(open(file_.c_str(), O_RDONLY));
  FileDescriptor wo(open(file_.c_str(), O_WRONLY));
  struct flock w = Lock(F_WRLCK, 0, 1);
  struct flock r = Lock(F_RDLCK, 0, 1);
  EXPECT_THAT(fcntl(ro.get(), F_SETLK, &w), SyscallFailsWithErrno(EBADF));
  EXPECT_THAT(fcntl(wo.get(), F_SETLK, &r), SyscallFailsWithErrno(EBADF));
}

TEST_F(LockTest, BadArguments) {
  struct flock fl = Lock(42, 0, 1);
  EXPECT_THAT(fcntl(fd_.get(), F_SETLK, &fl), SyscallFailsWithErrno(EINVAL));
  fl = Lock(F_RDLCK, 0, 1, 7);
  EXPECT_THAT(fcntl(fd_.get(), F_SETLK, &fl), SyscallFailsWithErrno(EINVAL));
  fl = Lock(F_RDLCK, -5, 1);
  EXPECT_THAT(fcntl(fd_.get(), F_SETLK, &fl), SyscallFailsWithErrno(EINVAL));
  fl = Lock(F_RDLCK, 5, -10);
  EXPECT_THAT(fcntl(fd_.get(), F_SETLK, &fl), SyscallFailsWithErrno(EINVAL));
  fl = Lock(F_UNLCK, 0, 1);
  EXPECT_THAT(fcntl(fd_.get(), F_GETLK, &fl), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(fcntl(fd_.get(), F_SETLK, nullptr), SyscallFailsWithErrno(EFAULT));
  EXPECT_THAT(fcntl(-1, F_SETLK, &fl), SyscallFailsWithErrno(EBADF));
  FileDescriptor p(open(file_.c_str(), O_PATH));
  fl = Lock(F_RDLCK, 0, 1);
  EXPECT_THAT(fcntl(p.get(), F_SETLK, &fl), SyscallFailsWithErrno(EBADF));
}

TEST_F(LockTest, OfdLocksConflictBetweenOpenFiles) {
  FileDescriptor other(open(file_.c_str(), O_RDWR));
  struct flock fl = Lock(F_WRLCK, 10, 10);
  ASSERT_THAT(fcntl(fd_.get(), F_OFD_SETLK, &fl), SyscallSucceeds());
  struct flock q = Lock(F_RDLCK, 0, 0);
  ASSERT_THAT(fcntl(other.get(), F_OFD_GETLK, &q), SyscallSucceeds());
  EXPECT_EQ(q.l_type, F_WRLCK);
  EXPECT_EQ(q.l_start, 10);
  EXPECT_EQ(q.l_len, 10);
  EXPECT_EQ(q.l_pid, -1);
  struct flock w = Lock(F_WRLCK, 15, 1);
  EXPECT_THAT(fcntl(other.get(), F_OFD_SETLK, &w), SyscallFailsWithErrno(EAGAIN));
  // Outside the locked range is free.
  w = Lock(F_WRLCK, 20, 5);
  EXPECT_THAT(fcntl(other.get(), F_OFD_SETLK, &w), SyscallSucceeds());
  // A traditional lock of this process conflicts with OFD locks too.
  struct flock posix = Lock(F_WRLCK, 12, 1);
  EXPECT_THAT(fcntl(fd_.get(), F_SETLK, &posix), SyscallFailsWithErrno(EAGAIN));
  // OFD locks go with the open file.
  fd_.reset();
  w = Lock(F_WRLCK, 10, 10);
  EXPECT_THAT(fcntl(other.get(), F_OFD_SETLK, &w), SyscallSucceeds());
}

TEST_F(LockTest, OfdLockNeedsZeroPid) {
  struct flock fl = Lock(F_RDLCK, 0, 1);
  fl.l_pid = 1;
  EXPECT_THAT(fcntl(fd_.get(), F_OFD_SETLK, &fl), SyscallFailsWithErrno(EINVAL));
}

TEST_F(LockTest, SplittingAndMerging) {
  FileDescriptor other(open(file_.c_str(), O_RDWR));
  struct flock fl = Lock(F_WRLCK, 0, 30);
  ASSERT_THAT(fcntl(fd_.get(), F_OFD_SETLK, &fl), SyscallSucceeds());
  // Unlock the middle: two locks remain.
  fl = Lock(F_UNLCK, 10, 10);
  ASSERT_THAT(fcntl(fd_.get(), F_OFD_SETLK, &fl), SyscallSucceeds());
  struct flock q = Lock(F_WRLCK, 0, 0);
  ASSERT_THAT(fcntl(other.get(), F_OFD_GETLK, &q), SyscallSucceeds());
  EXPECT_EQ(q.l_start, 0);
  EXPECT_EQ(q.l_len, 10);
  q = Lock(F_WRLCK, 10, 0);
  ASSERT_THAT(fcntl(other.get(), F_OFD_GETLK, &q), SyscallSucceeds());
  EXPECT_EQ(q.l_start, 20);
  EXPECT_EQ(q.l_len, 10);
  q = Lock(F_WRLCK, 10, 10);
  ASSERT_THAT(fcntl(other.get(), F_OFD_GETLK, &q), SyscallSucceeds());
  EXPECT_EQ(q.l_type, F_UNLCK);
  // Downgrade part to a read lock: readers may share it.
  fl = Lock(F_RDLCK, 0, 5);
  ASSERT_THAT(fcntl(fd_.get(), F_OFD_SETLK, &fl), SyscallSucceeds());
  struct flock r = Lock(F_RDLCK, 0, 5);
  EXPECT_THAT(fcntl(other.get(), F_OFD_SETLK, &r), SyscallSucceeds());
  r = Lock(F_RDLCK, 5, 1);
  EXPECT_THAT(fcntl(other.get(), F_OFD_SETLK, &r), SyscallFailsWithErrno(EAGAIN));
}

TEST_F(LockTest, WhenceAndToEof) {
  ASSERT_THAT(lseek(fd_.get(), 50, SEEK_SET), SyscallSucceeds());
  FileDescriptor other(open(file_.c_str(), O_RDWR));
  struct flock fl = Lock(F_WRLCK, 0, 0, SEEK_CUR);  // [50, EOF and beyond)
  ASSERT_THAT(fcntl(fd_.get(), F_OFD_SETLK, &fl), SyscallSucceeds());
  struct flock q = Lock(F_WRLCK, 1000000, 1);
  ASSERT_THAT(fcntl(other.get(), F_OFD_GETLK, &q), SyscallSucceeds());
  EXPECT_EQ(q.l_start, 50);
  EXPECT_EQ(q.l_len, 0);
  q = Lock(F_WRLCK, -60, 10, SEEK_END);  // [40, 50)
  ASSERT_THAT(fcntl(other.get(), F_OFD_GETLK, &q), SyscallSucceeds());
  EXPECT_EQ(q.l_type, F_UNLCK);
  // A negative length locks the bytes before l_start.
  fl = Lock(F_WRLCK, 40, -10);  // [30, 40)
  ASSERT_THAT(fcntl(fd_.get(), F_OFD_SETLK, &fl), SyscallSucceeds());
  q = Lock(F_RDLCK, 35, 1);
  ASSERT_THAT(fcntl(other.get(), F_OFD_GETLK, &q), SyscallSucceeds());
  EXPECT_EQ(q.l_start, 30);
  EXPECT_EQ(q.l_len, 10);
}

TEST_F(LockTest, PosixLockVisibleToChildAndReleasedByClose) {
  struct flock fl = Lock(F_WRLCK, 0, 10);
  ASSERT_THAT(fcntl(fd_.get(), F_SETLK, &fl), SyscallSucceeds());
  std::string f = file_;
  pid_t me = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(f.c_str(), O_RDWR);
    struct flock q = Lock(F_RDLCK, 0, 1);
    if (fcntl(fd, F_GETLK, &q) != 0) _exit(1);
    if (q.l_type != F_WRLCK || q.l_pid != me) _exit(2);
    struct flock w = Lock(F_WRLCK, 0, 1);
    if (fcntl(fd, F_SETLK, &w) == 0 || errno != EAGAIN) _exit(3);
    _exit(0);
  }
  int status;
  ASSERT_THAT(waitpid(pid, &status, 0), SyscallSucceedsWithValue(pid));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  // Closing any descriptor of the file drops the process's locks.
  FileDescriptor dup2nd(open(file_.c_str(), O_RDONLY));
  dup2nd.reset();
  pid = fork();
  if (pid == 0) {
    int fd = open(f.c_str(), O_RDWR);
    struct flock w = Lock(F_WRLCK, 0, 1);
    _exit(fcntl(fd, F_SETLK, &w) == 0 ? 0 : 4);
  }
  ASSERT_THAT(waitpid(pid, &status, 0), SyscallSucceedsWithValue(pid));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST_F(LockTest, SetlkwWaitsForRelease) {
  int p[2];
  ASSERT_THAT(pipe(p), SyscallSucceeds());
  std::string f = file_;
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(f.c_str(), O_RDWR);
    struct flock w = Lock(F_WRLCK, 0, 1);
    if (fcntl(fd, F_SETLK, &w) != 0) _exit(1);
    char c = 'x';
    if (write(p[1], &c, 1) != 1) _exit(2);
    usleep(100000);
    _exit(0);  // Exiting releases the lock.
  }
  char c;
  ASSERT_THAT(read(p[0], &c, 1), SyscallSucceedsWithValue(1));
  struct flock w = Lock(F_WRLCK, 0, 1);
  EXPECT_THAT(fcntl(fd_.get(), F_SETLKW, &w), SyscallSucceeds());
  int status;
  ASSERT_THAT(waitpid(pid, &status, 0), SyscallSucceedsWithValue(pid));
  close(p[0]);
  close(p[1]);
}

TEST_F(LockTest, Flock) {
  FileDescriptor other(open(file_.c_str(), O_RDONLY));
  ASSERT_THAT(flock(fd_.get(), LOCK_SH), SyscallSucceeds());
  EXPECT_THAT(flock(other.get(), LOCK_SH | LOCK_NB), SyscallSucceeds());
  EXPECT_THAT(flock(other.get(), LOCK_EX | LOCK_NB),
              SyscallFailsWithErrno(EWOULDBLOCK));
  ASSERT_THAT(flock(fd_.get(), LOCK_UN), SyscallSucceeds());
  EXPECT_THAT(flock(other.get(), LOCK_EX | LOCK_NB), SyscallSucceeds());
  EXPECT_THAT(flock(fd_.get(), LOCK_SH | LOCK_NB),
              SyscallFailsWithErrno(EWOULDBLOCK));
  // Closing the open file releases its lock.
  other.reset();
  EXPECT_THAT(flock(fd_.get(), LOCK_EX | LOCK_NB), SyscallSucceeds());
  // A dup shares the lock.
  FileDescriptor d(dup(fd_.get()));
  EXPECT_THAT(flock(d.get(), LOCK_EX | LOCK_NB), SyscallSucceeds());
}

TEST_F(LockTest, FlockAndPosixLocksAreIndependent) {
  ASSERT_THAT(flock(fd_.get(), LOCK_EX), SyscallSucceeds());
  FileDescriptor other(open(file_.c_str(), O_RDWR));
  struct flock w = Lock(F_WRLCK, 0, 0);
  EXPECT_THAT(fcntl(other.get(), F_OFD_SETLK, &w), SyscallSucceeds());
}

TEST_F(LockTest, FlockErrors) {
  EXPECT_THAT(flock(fd_.get(), 0), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(flock(fd_.get(), LOCK_SH | LOCK_EX), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(flock(-1, LOCK_SH), SyscallFailsWithErrno(EBADF));
  FileDescriptor p(open(file_.c_str(), O_PATH));
  EXPECT_THAT(flock(p.get(), LOCK_SH), SyscallFailsWithErrno(EBADF));
}

TEST_F(LockTest, FlockOnPipeAndDirectory) {
  int p[2];
  ASSERT_THAT(pipe(p), SyscallSucceeds());
  FileDescriptor r(p[0]), w(p[1]);
  EXPECT_THAT(flock(r.get(), LOCK_EX | LOCK_NB), SyscallSucceeds());
  FileDescriptor d(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
  EXPECT_THAT(flock(d.get(), LOCK_EX | LOCK_NB), SyscallSucceeds());
}

TEST_F(LockTest, OwnerAndSignalCommands) {
  EXPECT_THAT(fcntl(fd_.get(), F_GETOWN), SyscallSucceedsWithValue(0));
  ASSERT_THAT(fcntl(fd_.get(), F_SETOWN, getpid()), SyscallSucceeds());
  EXPECT_THAT(fcntl(fd_.get(), F_GETOWN), SyscallSucceedsWithValue(getpid()));
  struct f_owner_ex ex;
  ASSERT_THAT(fcntl(fd_.get(), F_GETOWN_EX, &ex), SyscallSucceeds());
  EXPECT_EQ(ex.type, F_OWNER_PID);
  EXPECT_EQ(ex.pid, getpid());
  ex.type = static_cast<__pid_type>(7);
  EXPECT_THAT(fcntl(fd_.get(), F_SETOWN_EX, &ex), SyscallFailsWithErrno(EINVAL));
  ASSERT_THAT(fcntl(fd_.get(), F_SETSIG, SIGUSR1), SyscallSucceeds());
  EXPECT_THAT(fcntl(fd_.get(), F_GETSIG), SyscallSucceedsWithValue(SIGUSR1));
  EXPECT_THAT(fcntl(fd_.get(), F_SETSIG, 1000), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(fcntl(fd_.get(), F_GETLEASE), SyscallSucceedsWithValue(F_UNLCK));
  EXPECT_THAT(fcntl(fd_.get(), 9999), SyscallFailsWithErrno(EINVAL));
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
