// IPC namespaces: clone(2) and unshare(2) with CLONE_NEWIPC give an empty
// set of System V objects and POSIX message queues.
//
// Natively these need CAP_SYS_ADMIN and create host objects: every test
// removes what it creates; the new namespaces die with the children.

#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

key_t FreeKey() {
  static int n = 0;
  for (;;) {
    key_t key = static_cast<key_t>(0x53000000 | ((getpid() & 0xffff) << 8) |
                                   (n++ & 0xff));
    if (shmget(key, 0, 0) < 0 && errno == ENOENT) return key;
  }
}

// Runs fn in a child that has unshared its IPC namespace; returns the
// child's exit status, or -1 if unsharing is not permitted.
template <typename F>
int InNewNamespace(F fn) {
  pid_t pid = fork();
  if (pid == 0) {
    if (unshare(CLONE_NEWIPC) != 0) _exit(errno == EPERM ? 99 : 98);
    _exit(fn());
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return 200;
  return WEXITSTATUS(status) == 99 ? -1 : WEXITSTATUS(status);
}

TEST(IpcNamespaceTest, UnshareGivesEmptyNamespace) {
  key_t key = FreeKey();
  int shm = shmget(key, 4096, IPC_CREAT | IPC_EXCL | 0600);
  ASSERT_THAT(shm, SyscallSucceeds());
  int sem = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
  ASSERT_THAT(sem, SyscallSucceeds());
  int msg = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
  ASSERT_THAT(msg, SyscallSucceeds());
  std::string mq_name = "/pyvisor_ipcns_" + std::to_string(getpid());
  mqd_t mq = mq_open(mq_name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600, nullptr);
  ASSERT_THAT(mq, SyscallSucceeds());

  char parent_ns[64] = {};
  ASSERT_THAT(readlink("/proc/self/ns/ipc", parent_ns, sizeof(parent_ns) - 1),
              SyscallSucceeds());
  int status = InNewNamespace([&] {
    char ns[64] = {};
    if (readlink("/proc/self/ns/ipc", ns, sizeof(ns) - 1) <= 0) return 9;
    if (strncmp(ns, "ipc:[", 5) != 0 || strcmp(ns, parent_ns) == 0) return 10;
    struct shmid_ds ds;
    if (shmget(key, 0, 0) != -1 || errno != ENOENT) return 1;
    if (shmctl(shm, IPC_STAT, &ds) != -1 || errno != EINVAL) return 2;
    if (semctl(sem, 0, GETVAL) != -1 || errno != EINVAL) return 3;
    if (msgctl(msg, IPC_STAT, nullptr) != -1 || errno != EINVAL) return 4;
    if (mq_open(mq_name.c_str(), O_RDWR) != -1 || errno != ENOENT) return 5;
    // The same key and name are free here.
    // What is left here goes with the namespace when this child exits.
    int mine = shmget(key, 8192, IPC_CREAT | IPC_EXCL | 0600);
    if (mine < 0) return 6;
    if (shmat(mine, nullptr, 0) == reinterpret_cast<void*>(-1)) return 11;
    if (semget(IPC_PRIVATE, 2, IPC_CREAT | 0600) < 0) return 12;
    if (msgget(IPC_PRIVATE, IPC_CREAT | 0600) < 0) return 13;
    mqd_t q = mq_open(mq_name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600, nullptr);
    if (q < 0) return 7;
    // The descriptor opened before unsharing still works.
    if (mq_send(mq, "x", 1, 0) != 0) return 8;
    return 0;
  });
  SKIP_IF(status == -1);
  EXPECT_EQ(status, 0);

  // The parent's objects are untouched.
  struct shmid_ds ds = {};
  ASSERT_THAT(shmctl(shm, IPC_STAT, &ds), SyscallSucceeds());
  EXPECT_EQ(ds.shm_segsz, 4096u);
  struct mq_attr attr = {};
  ASSERT_THAT(mq_getattr(mq, &attr), SyscallSucceeds());
  EXPECT_EQ(attr.mq_curmsgs, 1);
  mq_close(mq);
  mq_unlink(mq_name.c_str());
  shmctl(shm, IPC_RMID, nullptr);
  semctl(sem, 0, IPC_RMID);
  msgctl(msg, IPC_RMID, nullptr);
}

TEST(IpcNamespaceTest, UnshareAppliesSemUndo) {
  int sem = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
  ASSERT_THAT(sem, SyscallSucceeds());
  ASSERT_THAT(semctl(sem, 0, SETVAL, 1), SyscallSucceeds());
  int pipefd[2];
  ASSERT_THAT(pipe(pipefd), SyscallSucceeds());
  pid_t pid = fork();
  if (pid == 0) {
    close(pipefd[0]);
    struct sembuf op = {0, -1, SEM_UNDO};
    if (semop(sem, &op, 1) != 0) _exit(1);
    if (unshare(CLONE_NEWIPC) != 0) _exit(errno == EPERM ? 99 : 2);
    // Tell the parent, then linger so that exit is not what undid it.
    if (write(pipefd[1], "u", 1) != 1) _exit(3);
    pause();
    _exit(0);
  }
  ASSERT_THAT(pid, SyscallSucceeds());
  close(pipefd[1]);
  char c;
  ssize_t n = read(pipefd[0], &c, 1);
  close(pipefd[0]);
  if (n == 1) {
    EXPECT_THAT(semctl(sem, 0, GETVAL), SyscallSucceedsWithValue(1));
  }
  kill(pid, SIGKILL);
  int status;
  ASSERT_THAT(waitpid(pid, &status, 0), SyscallSucceedsWithValue(pid));
  semctl(sem, 0, IPC_RMID);
  SKIP_IF(n != 1 && WIFEXITED(status) && WEXITSTATUS(status) == 99);
  EXPECT_EQ(n, 1) << status;
}

TEST(IpcNamespaceTest, SetnsJoinsAnotherProcesssNamespace) {
  key_t key = FreeKey();
  int pipefd[2];
  ASSERT_THAT(pipe(pipefd), SyscallSucceeds());
  pid_t owner = fork();
  if (owner == 0) {
    close(pipefd[0]);
    if (unshare(CLONE_NEWIPC) != 0) _exit(errno == EPERM ? 99 : 1);
    if (shmget(key, 4096, IPC_CREAT | IPC_EXCL | 0600) < 0) _exit(2);
    if (write(pipefd[1], "r", 1) != 1) _exit(3);
    pause();
    _exit(0);
  }
  ASSERT_THAT(owner, SyscallSucceeds());
  close(pipefd[1]);
  char c;
  ssize_t n = read(pipefd[0], &c, 1);
  close(pipefd[0]);
  int status = 0;
  if (n != 1) {
    ASSERT_THAT(waitpid(owner, &status, 0), SyscallSucceedsWithValue(owner));
    SKIP_IF(WIFEXITED(status) && WEXITSTATUS(status) == 99);
    FAIL() << "owner status " << status;
  }
  // Not in our namespace; joined through the owner's ns file, it is there.
  EXPECT_THAT(shmget(key, 0, 0), SyscallFailsWithErrno(ENOENT));
  pid_t joiner = fork();
  if (joiner == 0) {
    std::string path = "/proc/" + std::to_string(owner) + "/ns/ipc";
    int fd = open(path.c_str(), O_RDONLY);
    if (fd < 0) _exit(1);
    if (setns(fd, CLONE_NEWUTS) != -1 || errno != EINVAL) _exit(2);
    if (setns(fd, CLONE_NEWIPC) != 0) _exit(3);
    int id = shmget(key, 0, 0);
    if (id < 0) _exit(4);
    shmctl(id, IPC_RMID, nullptr);
    _exit(0);
  }
  ASSERT_THAT(joiner, SyscallSucceeds());
  ASSERT_THAT(waitpid(joiner, &status, 0), SyscallSucceedsWithValue(joiner));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  kill(owner, SIGKILL);
  ASSERT_THAT(waitpid(owner, &status, 0), SyscallSucceedsWithValue(owner));
}

TEST(IpcNamespaceTest, CloneRefusesNewIpcWithSysvsem) {
  EXPECT_THAT(syscall(SYS_clone, CLONE_NEWIPC | CLONE_SYSVSEM | SIGCHLD, 0, 0,
                      0, 0),
              SyscallFailsWithErrno(EINVAL));
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
