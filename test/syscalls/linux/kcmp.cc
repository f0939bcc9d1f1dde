// kcmp(2): whether two processes share kernel resources.

#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/sem.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

long Kcmp(pid_t a, pid_t b, int type, unsigned long x, unsigned long y) {
  return syscall(SYS_kcmp, a, b, type, x, y);
}

TEST(KcmpTest, SelfSharesEverything) {
  const pid_t me = getpid();
  for (int type : {KCMP_VM, KCMP_FILES, KCMP_FS, KCMP_SIGHAND, KCMP_IO,
                   KCMP_SYSVSEM}) {
    EXPECT_THAT(Kcmp(me, me, type, 0, 0), SyscallSucceedsWithValue(0)) << type;
  }
}

TEST(KcmpTest, FilesOrderConsistently) {
  const pid_t me = getpid();
  int a = open("/dev/null", O_RDONLY);
  ASSERT_THAT(a, SyscallSucceeds());
  int b = dup(a);
  int c = open("/dev/null", O_RDONLY);
  ASSERT_THAT(c, SyscallSucceeds());
  EXPECT_THAT(Kcmp(me, me, KCMP_FILE, a, b), SyscallSucceedsWithValue(0));
  const long ac = Kcmp(me, me, KCMP_FILE, a, c);
  const long ca = Kcmp(me, me, KCMP_FILE, c, a);
  ASSERT_TRUE((ac == 1 && ca == 2) || (ac == 2 && ca == 1)) << ac << " " << ca;
  EXPECT_THAT(Kcmp(me, me, KCMP_FILE, a, 1000), SyscallFailsWithErrno(EBADF));
  close(a);
  close(b);
  close(c);
}

TEST(KcmpTest, ForkedChildSharesFilesButNotTables) {
  int fd = open("/dev/null", O_RDONLY);
  ASSERT_THAT(fd, SyscallSucceeds());
  int go[2];
  ASSERT_THAT(pipe(go), SyscallSucceeds());
  pid_t c = fork();
  ASSERT_THAT(c, SyscallSucceeds());
  if (c == 0) {
    char x;
    read(go[0], &x, 1);
    _exit(0);
  }
  const pid_t me = getpid();
  EXPECT_THAT(Kcmp(me, c, KCMP_FILE, fd, fd), SyscallSucceedsWithValue(0));
  for (int type : {KCMP_VM, KCMP_FILES, KCMP_FS, KCMP_SIGHAND}) {
    const long r = Kcmp(me, c, type, 0, 0);
    EXPECT_TRUE(r == 1 || r == 2) << type << " " << r;
  }
  write(go[1], "x", 1);
  int status;
  ASSERT_THAT(waitpid(c, &status, 0), SyscallSucceedsWithValue(c));
  close(fd);
}

TEST(KcmpTest, SemUndoListsArePerProcess) {
  int go[2];
  ASSERT_THAT(pipe(go), SyscallSucceeds());
  pid_t c = fork();
  ASSERT_THAT(c, SyscallSucceeds());
  if (c == 0) {
    char x;
    read(go[0], &x, 1);
    _exit(0);
  }
  const pid_t me = getpid();
  // Neither has made a SEM_UNDO operation: both lists are empty (NULL).
  EXPECT_THAT(Kcmp(me, c, KCMP_SYSVSEM, 0, 0), SyscallSucceedsWithValue(0));
  int id = semget(IPC_PRIVATE, 1, 0600);
  ASSERT_THAT(id, SyscallSucceeds());
  struct sembuf op = {0, 1, SEM_UNDO};
  ASSERT_THAT(semop(id, &op, 1), SyscallSucceeds());
  const long r = Kcmp(me, c, KCMP_SYSVSEM, 0, 0);
  EXPECT_TRUE(r == 1 || r == 2) << r;
  write(go[1], "x", 1);
  int status;
  ASSERT_THAT(waitpid(c, &status, 0), SyscallSucceedsWithValue(c));
  ASSERT_THAT(semctl(id, 0, IPC_RMID), SyscallSucceeds());
}

TEST(KcmpTest, Errors) {
  const pid_t me = getpid();
  EXPECT_THAT(Kcmp(me, 0x3ffffff, KCMP_VM, 0, 0), SyscallFailsWithErrno(ESRCH));
  EXPECT_THAT(Kcmp(me, me, KCMP_TYPES, 0, 0), SyscallFailsWithErrno(EINVAL));
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
