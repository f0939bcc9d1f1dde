// System V message queues: msgget(2), msgsnd(2), msgrcv(2), msgctl(2).
//
// Natively these create host queues: every test removes what it creates.

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/test_util.h"

#ifndef MSG_COPY
#define MSG_COPY 040000
#endif

namespace pyvisor {
namespace testing {
namespace {

class Queue {
 public:
  explicit Queue(int id) : id_(id) {}
  ~Queue() {
    if (id_ >= 0) msgctl(id_, IPC_RMID, nullptr);
  }
  int get() const { return id_; }
  void release() { id_ = -1; }

 private:
  int id_;
};

key_t NextKey() {
  static int n = 0;
  return static_cast<key_t>(0x52000000 | ((getpid() & 0xffff) << 8) | n++);
}

struct Msg {
  long mtype;
  char mtext[64];
};

int Send(int id, long type, const char* text, int flags = 0) {
  Msg m = {};
  m.mtype = type;
  memcpy(m.mtext, text, strnlen(text, sizeof(m.mtext) - 1));
  return msgsnd(id, &m, strlen(text), flags);
}

// Receives one message and returns "type:text", or "errno:N".
std::string Recv(int id, long type, int flags = IPC_NOWAIT, size_t size = 64) {
  Msg m = {};
  ssize_t n = msgrcv(id, &m, size, type, flags);
  if (n < 0) return "errno:" + std::to_string(errno);
  return std::to_string(m.mtype) + ":" + std::string(m.mtext, n);
}

template <typename F>
bool Eventually(F cond) {
  for (int i = 0; i < 20000; i++) {
    if (cond()) return true;
    usleep(1000);
  }
  return false;
}

TEST(MsgQueueTest, SendReceiveInOrder) {
  Queue q(msgget(IPC_PRIVATE, IPC_CREAT | 0600));
  ASSERT_THAT(q.get(), SyscallSucceeds());
  ASSERT_THAT(Send(q.get(), 1, "one"), SyscallSucceeds());
  ASSERT_THAT(Send(q.get(), 2, "two"), SyscallSucceeds());
  ASSERT_THAT(Send(q.get(), 1, "three"), SyscallSucceeds());
  struct msqid_ds ds = {};
  ASSERT_THAT(msgctl(q.get(), IPC_STAT, &ds), SyscallSucceeds());
  EXPECT_EQ(ds.msg_qnum, 3u);
  EXPECT_EQ(ds.__msg_cbytes, 11u);
  EXPECT_EQ(ds.msg_lspid, getpid());
  EXPECT_EQ(ds.msg_qbytes, 16384u);
  EXPECT_EQ(Recv(q.get(), 0), "1:one");
  EXPECT_EQ(Recv(q.get(), 0), "2:two");
  EXPECT_EQ(Recv(q.get(), 0), "1:three");
  EXPECT_EQ(Recv(q.get(), 0), "errno:" + std::to_string(ENOMSG));
  ASSERT_THAT(msgctl(q.get(), IPC_STAT, &ds), SyscallSucceeds());
  EXPECT_EQ(ds.msg_qnum, 0u);
  EXPECT_EQ(ds.msg_lrpid, getpid());
  EXPECT_NE(ds.msg_rtime, 0);
}

TEST(MsgQueueTest, TypeSelection) {
  Queue q(msgget(IPC_PRIVATE, IPC_CREAT | 0600));
  ASSERT_THAT(q.get(), SyscallSucceeds());
  ASSERT_THAT(Send(q.get(), 5, "five"), SyscallSucceeds());
  ASSERT_THAT(Send(q.get(), 3, "three"), SyscallSucceeds());
  ASSERT_THAT(Send(q.get(), 7, "seven"), SyscallSucceeds());
  ASSERT_THAT(Send(q.get(), 3, "three-b"), SyscallSucceeds());
  // Positive: the first of that type.
  EXPECT_EQ(Recv(q.get(), 7), "7:seven");
  // MSG_EXCEPT: the first of another type.
  EXPECT_EQ(Recv(q.get(), 5, IPC_NOWAIT | MSG_EXCEPT), "3:three");
  // Negative: the lowest type up to |msgtyp|, first of it.
  ASSERT_THAT(Send(q.get(), 1, "one"), SyscallSucceeds());
  EXPECT_EQ(Recv(q.get(), -4), "1:one");
  EXPECT_EQ(Recv(q.get(), -4), "3:three-b");
  EXPECT_EQ(Recv(q.get(), -4), "errno:" + std::to_string(ENOMSG));
  EXPECT_EQ(Recv(q.get(), 9), "errno:" + std::to_string(ENOMSG));
  EXPECT_EQ(Recv(q.get(), 0), "5:five");
}

TEST(MsgQueueTest, TooBigAndNoError) {
  Queue q(msgget(IPC_PRIVATE, IPC_CREAT | 0600));
  ASSERT_THAT(q.get(), SyscallSucceeds());
  ASSERT_THAT(Send(q.get(), 1, "abcdef"), SyscallSucceeds());
  // Too small a buffer leaves the message queued.
  EXPECT_EQ(Recv(q.get(), 0, IPC_NOWAIT, 3), "errno:" + std::to_string(E2BIG));
  EXPECT_EQ(Recv(q.get(), 0, IPC_NOWAIT | MSG_NOERROR, 3), "1:abc");
  EXPECT_EQ(Recv(q.get(), 0), "errno:" + std::to_string(ENOMSG));
}

TEST(MsgQueueTest, SendErrors) {
  Queue q(msgget(IPC_PRIVATE, IPC_CREAT | 0600));
  ASSERT_THAT(q.get(), SyscallSucceeds());
  Msg m = {};
  m.mtype = 0;
  EXPECT_THAT(msgsnd(q.get(), &m, 1, 0), SyscallFailsWithErrno(EINVAL));
  m.mtype = -3;
  EXPECT_THAT(msgsnd(q.get(), &m, 1, 0), SyscallFailsWithErrno(EINVAL));
  m.mtype = 1;
  EXPECT_THAT(msgsnd(q.get(), &m, 8193, 0), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(msgsnd(q.get(), &m, -1, 0), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(msgsnd(-1, &m, 1, 0), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(msgsnd(q.get(), nullptr, 1, 0), SyscallFailsWithErrno(EFAULT));
  EXPECT_THAT(msgsnd(q.get() + 1, &m, 1, 0), SyscallFailsWithErrno(EINVAL));
  // Zero-length messages are fine.
  EXPECT_THAT(msgsnd(q.get(), &m, 0, 0), SyscallSucceeds());
  EXPECT_EQ(Recv(q.get(), 0), "1:");
  EXPECT_THAT(msgrcv(q.get(), &m, -1, 0, 0), SyscallFailsWithErrno(EINVAL));
}

TEST(MsgQueueTest, FullQueue) {
  Queue q(msgget(IPC_PRIVATE, IPC_CREAT | 0600));
  ASSERT_THAT(q.get(), SyscallSucceeds());
  struct msqid_ds ds = {};
  ASSERT_THAT(msgctl(q.get(), IPC_STAT, &ds), SyscallSucceeds());
  ds.msg_qbytes = 10;
  ASSERT_THAT(msgctl(q.get(), IPC_SET, &ds), SyscallSucceeds());
  ASSERT_THAT(Send(q.get(), 1, "12345678"), SyscallSucceeds());
  EXPECT_THAT(Send(q.get(), 1, "abc", IPC_NOWAIT), SyscallFailsWithErrno(EAGAIN));
  // The number of messages is limited by msg_qbytes too.
  EXPECT_THAT(Send(q.get(), 1, "ab", IPC_NOWAIT), SyscallSucceeds());
  for (int i = 2; i < 10; i++) {
    EXPECT_THAT(Send(q.get(), 1, "", IPC_NOWAIT), SyscallSucceeds());
  }
  EXPECT_THAT(Send(q.get(), 1, "", IPC_NOWAIT), SyscallFailsWithErrno(EAGAIN));
  // A blocked sender goes on once there is room.
  pid_t pid = fork();
  if (pid == 0) _exit(Send(q.get(), 2, "later") == 0 ? 0 : 1);
  ASSERT_THAT(pid, SyscallSucceeds());
  usleep(20000);
  EXPECT_EQ(Recv(q.get(), 0), "1:12345678");
  int status;
  ASSERT_THAT(waitpid(pid, &status, 0), SyscallSucceedsWithValue(pid));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(Recv(q.get(), 2), "2:later");
}

struct RecvArgs {
  int id;
  long type;
  std::atomic<pid_t> tid{0};
  std::atomic<bool> done{false};
  std::string got;
};

void* Receiver(void* p) {
  auto* a = static_cast<RecvArgs*>(p);
  a->tid = static_cast<pid_t>(syscall(SYS_gettid));
  a->got = Recv(a->id, a->type, 0);
  a->done = true;
  return nullptr;
}

// Waits until the receiver thread has announced itself and sleeps (in
// msgrcv: it does nothing else after announcing).
bool ReceiverBlocked(const RecvArgs& a) {
  return Eventually([&] {
    if (a.tid == 0) return false;
    std::ifstream f("/proc/self/task/" + std::to_string(a.tid) + "/stat");
    std::string stat;
    std::getline(f, stat);
    size_t paren = stat.rfind(')');
    return paren != std::string::npos && paren + 2 < stat.size() &&
           stat[paren + 2] == 'S';
  });
}

TEST(MsgQueueTest, BlockedReceiverGetsMessage) {
  Queue q(msgget(IPC_PRIVATE, IPC_CREAT | 0600));
  ASSERT_THAT(q.get(), SyscallSucceeds());
  RecvArgs a;
  a.id = q.get();
  a.type = 4;
  pthread_t th;
  ASSERT_EQ(pthread_create(&th, nullptr, Receiver, &a), 0);
  usleep(20000);
  ASSERT_THAT(Send(q.get(), 3, "not-this"), SyscallSucceeds());
  usleep(20000);
  EXPECT_FALSE(a.done);
  ASSERT_THAT(Send(q.get(), 4, "this"), SyscallSucceeds());
  ASSERT_EQ(pthread_join(th, nullptr), 0);
  EXPECT_EQ(a.got, "4:this");
  EXPECT_EQ(Recv(q.get(), 0), "3:not-this");
}

TEST(MsgQueueTest, RemoveWakesWithEIDRM) {
  Queue q(msgget(IPC_PRIVATE, IPC_CREAT | 0600));
  ASSERT_THAT(q.get(), SyscallSucceeds());
  RecvArgs a;
  a.id = q.get();
  a.type = 0;
  pthread_t th;
  ASSERT_EQ(pthread_create(&th, nullptr, Receiver, &a), 0);
  ASSERT_TRUE(ReceiverBlocked(a));
  ASSERT_THAT(msgctl(q.get(), IPC_RMID, nullptr), SyscallSucceeds());
  q.release();
  ASSERT_EQ(pthread_join(th, nullptr), 0);
  EXPECT_EQ(a.got, "errno:" + std::to_string(EIDRM));
}

void Nop(int) {}

TEST(MsgQueueTest, SignalInterruptsEvenWithRestart) {
  Queue q(msgget(IPC_PRIVATE, IPC_CREAT | 0600));
  ASSERT_THAT(q.get(), SyscallSucceeds());
  struct sigaction sa = {}, old;
  sa.sa_handler = Nop;
  sa.sa_flags = SA_RESTART;
  ASSERT_THAT(sigaction(SIGUSR1, &sa, &old), SyscallSucceeds());
  RecvArgs a;
  a.id = q.get();
  a.type = 0;
  pthread_t th;
  ASSERT_EQ(pthread_create(&th, nullptr, Receiver, &a), 0);
  ASSERT_TRUE(ReceiverBlocked(a));
  ASSERT_EQ(pthread_kill(th, SIGUSR1), 0);
  ASSERT_EQ(pthread_join(th, nullptr), 0);
  EXPECT_EQ(a.got, "errno:" + std::to_string(EINTR));
  ASSERT_THAT(sigaction(SIGUSR1, &old, nullptr), SyscallSucceeds());
}

TEST(MsgQueueTest, KeysAndPermissions) {
  key_t key = NextKey();
  int id = -1;
  for (int i = 0; i < 64 && id < 0; i++) {
    key = NextKey();
    id = msgget(key, IPC_CREAT | IPC_EXCL | 0600);
    if (id < 0) {
      ASSERT_EQ(errno, EEXIST);
    }
  }
  Queue q(id);
  ASSERT_THAT(q.get(), SyscallSucceeds());
  EXPECT_THAT(msgget(key, 0), SyscallSucceedsWithValue(q.get()));
  EXPECT_THAT(msgget(key, IPC_CREAT | IPC_EXCL), SyscallFailsWithErrno(EEXIST));
  struct msqid_ds ds = {};
  ASSERT_THAT(msgctl(q.get(), IPC_STAT, &ds), SyscallSucceeds());
  EXPECT_EQ(ds.msg_perm.__key, key);
  EXPECT_EQ(ds.msg_perm.mode & 0777, 0600u);
  ds.msg_perm.mode = 0644;
  ASSERT_THAT(msgctl(q.get(), IPC_SET, &ds), SyscallSucceeds());
  ASSERT_THAT(msgctl(q.get(), IPC_STAT, &ds), SyscallSucceeds());
  EXPECT_EQ(ds.msg_perm.mode & 0777, 0644u);
  EXPECT_THAT(msgctl(q.get(), 1234, &ds), SyscallFailsWithErrno(EINVAL));
}

TEST(MsgQueueTest, CopyNeedsNoWait) {
  Queue q(msgget(IPC_PRIVATE, IPC_CREAT | 0600));
  ASSERT_THAT(q.get(), SyscallSucceeds());
  Msg m;
  EXPECT_THAT(msgrcv(q.get(), &m, sizeof(m.mtext), 0, MSG_COPY),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(msgrcv(q.get(), &m, sizeof(m.mtext), 0,
                     MSG_COPY | MSG_EXCEPT | IPC_NOWAIT),
              SyscallFailsWithErrno(EINVAL));
  ASSERT_THAT(Send(q.get(), 1, "a"), SyscallSucceeds());
  ASSERT_THAT(Send(q.get(), 2, "b"), SyscallSucceeds());
  // With CONFIG_CHECKPOINT_RESTORE the message at an index is copied and
  // stays queued; without it MSG_COPY fails with ENOSYS.
  ssize_t n = msgrcv(q.get(), &m, sizeof(m.mtext), 1, MSG_COPY | IPC_NOWAIT);
  if (n < 0) {
    EXPECT_EQ(errno, ENOSYS);
  } else {
    EXPECT_EQ(n, 1);
    EXPECT_EQ(m.mtype, 2);
    EXPECT_EQ(Recv(q.get(), 0), "1:a");
    EXPECT_THAT(msgrcv(q.get(), &m, sizeof(m.mtext), 5, MSG_COPY | IPC_NOWAIT),
                SyscallFailsWithErrno(ENOMSG));
  }
}

TEST(MsgQueueTest, InfoAndProc) {
  Queue q(msgget(IPC_PRIVATE, IPC_CREAT | 0600));
  ASSERT_THAT(q.get(), SyscallSucceeds());
  ASSERT_THAT(Send(q.get(), 1, "hello"), SyscallSucceeds());
  struct msginfo info = {};
  int max_index =
      msgctl(0, IPC_INFO, reinterpret_cast<struct msqid_ds*>(&info));
  ASSERT_THAT(max_index, SyscallSucceeds());
  EXPECT_EQ(info.msgmax, 8192);
  EXPECT_EQ(info.msgmnb, 16384);
  ASSERT_THAT(msgctl(0, MSG_INFO, reinterpret_cast<struct msqid_ds*>(&info)),
              SyscallSucceedsWithValue(max_index));
  EXPECT_GE(info.msgpool, 1);
  bool found = false;
  for (int i = 0; i <= max_index; i++) {
    struct msqid_ds ds = {};
    if (msgctl(i, MSG_STAT, &ds) == q.get()) {
      found = true;
      EXPECT_EQ(ds.msg_qnum, 1u);
    }
  }
  EXPECT_TRUE(found);
  std::ifstream f("/proc/sysvipc/msg");
  ASSERT_TRUE(f.good());
  std::string line;
  std::getline(f, line);
  EXPECT_NE(line.find("msqid"), std::string::npos);
  found = false;
  while (std::getline(f, line)) {
    std::istringstream in(line);
    long key, id;
    unsigned mode;
    unsigned long cbytes, qnum;
    in >> key >> id >> std::oct >> mode >> std::dec >> cbytes >> qnum;
    if (id == q.get()) {
      found = true;
      EXPECT_EQ(cbytes, 5u);
      EXPECT_EQ(qnum, 1u);
    }
  }
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
