// System V semaphores: semget(2), semop(2), semtimedop(2), semctl(2).
//
// Natively these create host semaphore sets: every test removes what it
// creates.

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

union semun {
  int val;
  struct semid_ds* buf;
  unsigned short* array;
  struct seminfo* __buf;
};

class SemSet {
 public:
  explicit SemSet(int id) : id_(id) {}
  ~SemSet() {
    if (id_ >= 0) semctl(id_, 0, IPC_RMID);
  }
  int get() const { return id_; }
  void release() { id_ = -1; }

 private:
  int id_;
};

key_t NextKey() {
  static int n = 0;
  return static_cast<key_t>(0x51000000 | ((getpid() & 0xffff) << 8) | n++);
}

int CreateKeyed(key_t* key, int nsems) {
  for (int i = 0; i < 64; i++) {
    *key = NextKey();
    int id = semget(*key, nsems, IPC_CREAT | IPC_EXCL | 0600);
    if (id >= 0 || errno != EEXIST) return id;
  }
  return -1;
}

int Op(int id, unsigned short num, short op, short flg = 0) {
  struct sembuf sb = {num, op, flg};
  return semop(id, &sb, 1);
}

// Polls until cond holds (for waiting on another thread to block).
template <typename F>
bool Eventually(F cond) {
  for (int i = 0; i < 20000; i++) {
    if (cond()) return true;
    usleep(1000);
  }
  return false;
}

TEST(SemaphoreTest, GetCreatesZeroedSet) {
  SemSet s(semget(IPC_PRIVATE, 3, IPC_CREAT | 0600));
  ASSERT_THAT(s.get(), SyscallSucceeds());
  for (int i = 0; i < 3; i++) {
    EXPECT_THAT(semctl(s.get(), i, GETVAL), SyscallSucceedsWithValue(0));
  }
  struct semid_ds ds = {};
  semun arg;
  arg.buf = &ds;
  ASSERT_THAT(semctl(s.get(), 0, IPC_STAT, arg), SyscallSucceeds());
  EXPECT_EQ(ds.sem_nsems, 3u);
  EXPECT_EQ(ds.sem_perm.mode & 0777, 0600u);
  EXPECT_EQ(ds.sem_otime, 0);
  EXPECT_NE(ds.sem_ctime, 0);
}

TEST(SemaphoreTest, GetErrors) {
  EXPECT_THAT(semget(IPC_PRIVATE, 0, IPC_CREAT | 0600),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(semget(IPC_PRIVATE, -1, IPC_CREAT | 0600),
              SyscallFailsWithErrno(EINVAL));
  key_t key;
  SemSet s(CreateKeyed(&key, 2));
  ASSERT_THAT(s.get(), SyscallSucceeds());
  EXPECT_THAT(semget(key, 2, 0), SyscallSucceedsWithValue(s.get()));
  EXPECT_THAT(semget(key, 0, 0), SyscallSucceedsWithValue(s.get()));
  EXPECT_THAT(semget(key, 3, 0), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(semget(key, 2, IPC_CREAT | IPC_EXCL),
              SyscallFailsWithErrno(EEXIST));
}

TEST(SemaphoreTest, SetValGetValAndRange) {
  SemSet s(semget(IPC_PRIVATE, 2, IPC_CREAT | 0600));
  ASSERT_THAT(s.get(), SyscallSucceeds());
  semun arg;
  arg.val = 5;
  ASSERT_THAT(semctl(s.get(), 1, SETVAL, arg), SyscallSucceeds());
  EXPECT_THAT(semctl(s.get(), 1, GETVAL), SyscallSucceedsWithValue(5));
  EXPECT_THAT(semctl(s.get(), 1, GETPID), SyscallSucceedsWithValue(getpid()));
  arg.val = 32768;
  EXPECT_THAT(semctl(s.get(), 1, SETVAL, arg), SyscallFailsWithErrno(ERANGE));
  arg.val = -1;
  EXPECT_THAT(semctl(s.get(), 1, SETVAL, arg), SyscallFailsWithErrno(ERANGE));
  EXPECT_THAT(semctl(s.get(), 2, GETVAL), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(semctl(s.get(), -1, GETVAL), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(semctl(s.get(), 0, 12345), SyscallFailsWithErrno(EINVAL));
}

TEST(SemaphoreTest, SetAllGetAll) {
  SemSet s(semget(IPC_PRIVATE, 3, IPC_CREAT | 0600));
  ASSERT_THAT(s.get(), SyscallSucceeds());
  unsigned short in[3] = {1, 2, 3};
  semun arg;
  arg.array = in;
  ASSERT_THAT(semctl(s.get(), 0, SETALL, arg), SyscallSucceeds());
  unsigned short out[3] = {};
  arg.array = out;
  ASSERT_THAT(semctl(s.get(), 0, GETALL, arg), SyscallSucceeds());
  EXPECT_EQ(out[0], 1);
  EXPECT_EQ(out[1], 2);
  EXPECT_EQ(out[2], 3);
  unsigned short big[3] = {1, 40000, 3};
  arg.array = big;
  EXPECT_THAT(semctl(s.get(), 0, SETALL, arg), SyscallFailsWithErrno(ERANGE));
  arg.array = nullptr;
  EXPECT_THAT(semctl(s.get(), 0, GETALL, arg), SyscallFailsWithErrno(EFAULT));
}

TEST(SemaphoreTest, OpsAreAtomic) {
  SemSet s(semget(IPC_PRIVATE, 2, IPC_CREAT | 0600));
  ASSERT_THAT(s.get(), SyscallSucceeds());
  ASSERT_THAT(Op(s.get(), 0, 2), SyscallSucceeds());
  // The second operation cannot proceed, so neither happens.
  struct sembuf sb[2] = {{0, -1, 0}, {1, -1, IPC_NOWAIT}};
  EXPECT_THAT(semop(s.get(), sb, 2), SyscallFailsWithErrno(EAGAIN));
  EXPECT_THAT(semctl(s.get(), 0, GETVAL), SyscallSucceedsWithValue(2));
  // Several operations on one semaphore add up.
  struct sembuf sb2[3] = {{0, -1, 0}, {0, -1, 0}, {1, 3, 0}};
  ASSERT_THAT(semop(s.get(), sb2, 3), SyscallSucceeds());
  EXPECT_THAT(semctl(s.get(), 0, GETVAL), SyscallSucceedsWithValue(0));
  EXPECT_THAT(semctl(s.get(), 1, GETVAL), SyscallSucceedsWithValue(3));
  struct semid_ds ds = {};
  semun arg;
  arg.buf = &ds;
  ASSERT_THAT(semctl(s.get(), 0, IPC_STAT, arg), SyscallSucceeds());
  EXPECT_NE(ds.sem_otime, 0);
}

TEST(SemaphoreTest, OpErrors) {
  SemSet s(semget(IPC_PRIVATE, 1, IPC_CREAT | 0600));
  ASSERT_THAT(s.get(), SyscallSucceeds());
  struct sembuf sb = {0, 1, 0};
  EXPECT_THAT(semop(s.get(), &sb, 0), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(semop(-1, &sb, 1), SyscallFailsWithErrno(EINVAL));
  std::vector<struct sembuf> many(501, sb);
  EXPECT_THAT(semop(s.get(), many.data(), many.size()),
              SyscallFailsWithErrno(E2BIG));
  sb.sem_num = 1;
  EXPECT_THAT(semop(s.get(), &sb, 1), SyscallFailsWithErrno(EFBIG));
  EXPECT_THAT(semop(s.get(), nullptr, 1), SyscallFailsWithErrno(EFAULT));
  // Past SEMVMX.
  EXPECT_THAT(Op(s.get(), 0, 32767), SyscallSucceeds());
  EXPECT_THAT(Op(s.get(), 0, 1), SyscallFailsWithErrno(ERANGE));
  // Waiting for zero without waiting.
  EXPECT_THAT(Op(s.get(), 0, 0, IPC_NOWAIT), SyscallFailsWithErrno(EAGAIN));
}

TEST(SemaphoreTest, TimedOpTimesOut) {
  SemSet s(semget(IPC_PRIVATE, 1, IPC_CREAT | 0600));
  ASSERT_THAT(s.get(), SyscallSucceeds());
  struct sembuf sb = {0, -1, 0};
  struct timespec ts = {0, 20 * 1000 * 1000};
  EXPECT_THAT(semtimedop(s.get(), &sb, 1, &ts), SyscallFailsWithErrno(EAGAIN));
  ts = {0, 0};
  EXPECT_THAT(semtimedop(s.get(), &sb, 1, &ts), SyscallFailsWithErrno(EAGAIN));
  ts = {0, 1000 * 1000 * 1000};
  EXPECT_THAT(semtimedop(s.get(), &sb, 1, &ts), SyscallFailsWithErrno(EINVAL));
}

struct WaitArgs {
  int id;
  short op;
  std::atomic<int> result{1};
  std::atomic<int> err{0};
};

void* Waiter(void* p) {
  auto* a = static_cast<WaitArgs*>(p);
  int r = Op(a->id, 0, a->op);
  a->err = errno;
  a->result = r;
  return nullptr;
}

TEST(SemaphoreTest, BlockedOpWakesAndCounts) {
  SemSet s(semget(IPC_PRIVATE, 1, IPC_CREAT | 0600));
  ASSERT_THAT(s.get(), SyscallSucceeds());
  WaitArgs dec;
  dec.id = s.get();
  dec.op = -2;
  pthread_t th;
  ASSERT_EQ(pthread_create(&th, nullptr, Waiter, &dec), 0);
  ASSERT_TRUE(Eventually([&] { return semctl(s.get(), 0, GETNCNT) == 1; }));
  EXPECT_THAT(semctl(s.get(), 0, GETZCNT), SyscallSucceedsWithValue(0));
  // Not enough yet.
  ASSERT_THAT(Op(s.get(), 0, 1), SyscallSucceeds());
  usleep(10000);
  EXPECT_EQ(dec.result, 1);
  ASSERT_THAT(Op(s.get(), 0, 1), SyscallSucceeds());
  ASSERT_EQ(pthread_join(th, nullptr), 0);
  EXPECT_EQ(dec.result, 0);
  EXPECT_THAT(semctl(s.get(), 0, GETVAL), SyscallSucceedsWithValue(0));
  EXPECT_THAT(semctl(s.get(), 0, GETNCNT), SyscallSucceedsWithValue(0));
}

TEST(SemaphoreTest, WaitForZero) {
  SemSet s(semget(IPC_PRIVATE, 1, IPC_CREAT | 0600));
  ASSERT_THAT(s.get(), SyscallSucceeds());
  ASSERT_THAT(Op(s.get(), 0, 1), SyscallSucceeds());
  WaitArgs z;
  z.id = s.get();
  z.op = 0;
  pthread_t th;
  ASSERT_EQ(pthread_create(&th, nullptr, Waiter, &z), 0);
  ASSERT_TRUE(Eventually([&] { return semctl(s.get(), 0, GETZCNT) == 1; }));
  ASSERT_THAT(Op(s.get(), 0, -1), SyscallSucceeds());
  ASSERT_EQ(pthread_join(th, nullptr), 0);
  EXPECT_EQ(z.result, 0);
}

TEST(SemaphoreTest, RemoveWakesWithEIDRM) {
  SemSet s(semget(IPC_PRIVATE, 1, IPC_CREAT | 0600));
  ASSERT_THAT(s.get(), SyscallSucceeds());
  WaitArgs dec;
  dec.id = s.get();
  dec.op = -1;
  pthread_t th;
  ASSERT_EQ(pthread_create(&th, nullptr, Waiter, &dec), 0);
  ASSERT_TRUE(Eventually([&] { return semctl(s.get(), 0, GETNCNT) == 1; }));
  ASSERT_THAT(semctl(s.get(), 0, IPC_RMID), SyscallSucceeds());
  s.release();
  ASSERT_EQ(pthread_join(th, nullptr), 0);
  EXPECT_EQ(dec.result, -1);
  EXPECT_EQ(dec.err, EIDRM);
}

void Nop(int) {}

TEST(SemaphoreTest, SignalInterruptsWithEINTR) {
  SemSet s(semget(IPC_PRIVATE, 1, IPC_CREAT | 0600));
  ASSERT_THAT(s.get(), SyscallSucceeds());
  struct sigaction sa = {}, old;
  sa.sa_handler = Nop;
  sa.sa_flags = SA_RESTART;  // semop is never restarted anyway.
  ASSERT_THAT(sigaction(SIGUSR1, &sa, &old), SyscallSucceeds());
  WaitArgs dec;
  dec.id = s.get();
  dec.op = -1;
  pthread_t th;
  ASSERT_EQ(pthread_create(&th, nullptr, Waiter, &dec), 0);
  ASSERT_TRUE(Eventually([&] { return semctl(s.get(), 0, GETNCNT) == 1; }));
  ASSERT_EQ(pthread_kill(th, SIGUSR1), 0);
  ASSERT_EQ(pthread_join(th, nullptr), 0);
  EXPECT_EQ(dec.result, -1);
  EXPECT_EQ(dec.err, EINTR);
  EXPECT_THAT(semctl(s.get(), 0, GETNCNT), SyscallSucceedsWithValue(0));
  ASSERT_THAT(sigaction(SIGUSR1, &old, nullptr), SyscallSucceeds());
}

TEST(SemaphoreTest, UndoOnExit) {
  SemSet s(semget(IPC_PRIVATE, 2, IPC_CREAT | 0600));
  ASSERT_THAT(s.get(), SyscallSucceeds());
  semun arg;
  arg.val = 3;
  ASSERT_THAT(semctl(s.get(), 0, SETVAL, arg), SyscallSucceeds());
  pid_t pid = fork();
  if (pid == 0) {
    if (Op(s.get(), 0, -2, SEM_UNDO) != 0) _exit(1);
    if (Op(s.get(), 1, 5, SEM_UNDO) != 0) _exit(2);
    if (Op(s.get(), 1, 1) != 0) _exit(3);
    _exit(0);
  }
  ASSERT_THAT(pid, SyscallSucceeds());
  int status;
  ASSERT_THAT(waitpid(pid, &status, 0), SyscallSucceedsWithValue(pid));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  // The child's SEM_UNDO operations are reverted, the plain one stays.
  EXPECT_THAT(semctl(s.get(), 0, GETVAL), SyscallSucceedsWithValue(3));
  EXPECT_THAT(semctl(s.get(), 1, GETVAL), SyscallSucceedsWithValue(1));
  EXPECT_THAT(semctl(s.get(), 0, GETPID), SyscallSucceedsWithValue(pid));
}

TEST(SemaphoreTest, UndoClampsAtZero) {
  SemSet s(semget(IPC_PRIVATE, 1, IPC_CREAT | 0600));
  ASSERT_THAT(s.get(), SyscallSucceeds());
  pid_t pid = fork();
  if (pid == 0) {
    if (Op(s.get(), 0, 2, SEM_UNDO) != 0) _exit(1);
    // Someone else takes the value away.
    if (Op(s.get(), 0, -2) != 0) _exit(2);
    _exit(0);
  }
  ASSERT_THAT(pid, SyscallSucceeds());
  int status;
  ASSERT_THAT(waitpid(pid, &status, 0), SyscallSucceedsWithValue(pid));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_THAT(semctl(s.get(), 0, GETVAL), SyscallSucceedsWithValue(0));
}

TEST(SemaphoreTest, SetValClearsUndo) {
  SemSet s(semget(IPC_PRIVATE, 1, IPC_CREAT | 0600));
  ASSERT_THAT(s.get(), SyscallSucceeds());
  int pipefd[2];
  ASSERT_THAT(pipe(pipefd), SyscallSucceeds());
  pid_t pid = fork();
  if (pid == 0) {
    close(pipefd[1]);
    if (Op(s.get(), 0, 4, SEM_UNDO) != 0) _exit(1);
    char c;
    if (read(pipefd[0], &c, 1) != 0) _exit(2);
    _exit(0);
  }
  ASSERT_THAT(pid, SyscallSucceeds());
  close(pipefd[0]);
  ASSERT_TRUE(Eventually([&] { return semctl(s.get(), 0, GETVAL) == 4; }));
  semun arg;
  arg.val = 7;
  ASSERT_THAT(semctl(s.get(), 0, SETVAL, arg), SyscallSucceeds());
  close(pipefd[1]);
  int status;
  ASSERT_THAT(waitpid(pid, &status, 0), SyscallSucceedsWithValue(pid));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_THAT(semctl(s.get(), 0, GETVAL), SyscallSucceedsWithValue(7));
}

TEST(SemaphoreTest, SetAndRemoveNeedOwner) {
  SemSet s(semget(IPC_PRIVATE, 1, IPC_CREAT | 0600));
  ASSERT_THAT(s.get(), SyscallSucceeds());
  struct semid_ds ds = {};
  semun arg;
  arg.buf = &ds;
  ASSERT_THAT(semctl(s.get(), 0, IPC_STAT, arg), SyscallSucceeds());
  ds.sem_perm.mode = 0400;
  ASSERT_THAT(semctl(s.get(), 0, IPC_SET, arg), SyscallSucceeds());
  ASSERT_THAT(semctl(s.get(), 0, IPC_STAT, arg), SyscallSucceeds());
  EXPECT_EQ(ds.sem_perm.mode & 0777, 0400u);
}

TEST(SemaphoreTest, InfoAndProc) {
  SemSet s(semget(IPC_PRIVATE, 4, IPC_CREAT | 0600));
  ASSERT_THAT(s.get(), SyscallSucceeds());
  struct seminfo info = {};
  semun arg;
  arg.__buf = &info;
  int max_index = semctl(0, 0, IPC_INFO, arg);
  ASSERT_THAT(max_index, SyscallSucceeds());
  EXPECT_EQ(info.semvmx, 32767);
  EXPECT_GT(info.semmni, 0);
  ASSERT_THAT(semctl(0, 0, SEM_INFO, arg), SyscallSucceedsWithValue(max_index));
  EXPECT_GE(info.semusz, 1);
  EXPECT_GE(info.semaem, 4);
  bool found = false;
  for (int i = 0; i <= max_index; i++) {
    struct semid_ds ds = {};
    arg.buf = &ds;
    if (semctl(i, 0, SEM_STAT, arg) == s.get()) {
      found = true;
      EXPECT_EQ(ds.sem_nsems, 4u);
    }
  }
  EXPECT_TRUE(found);
  std::ifstream f("/proc/sysvipc/sem");
  ASSERT_TRUE(f.good());
  std::string line;
  std::getline(f, line);
  EXPECT_NE(line.find("semid"), std::string::npos);
  found = false;
  while (std::getline(f, line)) {
    std::istringstream in(line);
    long key, id;
    unsigned mode, nsems;
    in >> key >> id >> std::oct >> mode >> std::dec >> nsems;
    if (id == s.get()) {
      found = true;
      EXPECT_EQ(nsems, 4u);
    }
  }
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
