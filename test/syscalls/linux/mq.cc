// POSIX message queues: mq_open(3), mq_unlink(3), mq_timedsend(3),
// mq_timedreceive(3), mq_notify(3), mq_getsetattr(2) and the mqueue
// filesystem.
//
// Natively these create host queues: every test unlinks what it creates,
// with names unique to the process.

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

std::string UniqueName(const char* what) {
  static int n = 0;
  return "/pyvisor_mq_" + std::to_string(getpid()) + "_" + what + "_" +
         std::to_string(n++);
}

// Queue unlinks its name and closes its descriptor.
class Queue {
 public:
  Queue(const std::string& name, int oflag, long maxmsg = 4,
        long msgsize = 64)
      : name_(name) {
    struct mq_attr attr = {};
    attr.mq_maxmsg = maxmsg;
    attr.mq_msgsize = msgsize;
    fd_ = mq_open(name.c_str(), oflag | O_CREAT | O_EXCL, 0600, &attr);
  }
  ~Queue() {
    if (fd_ >= 0) mq_close(fd_);
    mq_unlink(name_.c_str());
  }
  mqd_t get() const { return fd_; }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  mqd_t fd_;
};

std::string Receive(mqd_t q, unsigned* prio = nullptr) {
  char buf[256];
  ssize_t n = mq_receive(q, buf, sizeof(buf), prio);
  if (n < 0) return "errno:" + std::to_string(errno);
  return std::string(buf, n);
}

template <typename F>
bool Eventually(F cond) {
  for (int i = 0; i < 20000; i++) {
    if (cond()) return true;
    usleep(1000);
  }
  return false;
}

TEST(MqTest, PriorityOrder) {
  Queue q(UniqueName("prio"), O_RDWR);
  ASSERT_THAT(q.get(), SyscallSucceeds());
  ASSERT_THAT(mq_send(q.get(), "low", 3, 1), SyscallSucceeds());
  ASSERT_THAT(mq_send(q.get(), "high", 4, 9), SyscallSucceeds());
  ASSERT_THAT(mq_send(q.get(), "low2", 4, 1), SyscallSucceeds());
  ASSERT_THAT(mq_send(q.get(), "", 0, 5), SyscallSucceeds());
  struct mq_attr attr = {};
  ASSERT_THAT(mq_getattr(q.get(), &attr), SyscallSucceeds());
  EXPECT_EQ(attr.mq_maxmsg, 4);
  EXPECT_EQ(attr.mq_msgsize, 64);
  EXPECT_EQ(attr.mq_curmsgs, 4);
  EXPECT_EQ(attr.mq_flags, 0);
  unsigned prio = 0;
  EXPECT_EQ(Receive(q.get(), &prio), "high");
  EXPECT_EQ(prio, 9u);
  EXPECT_EQ(Receive(q.get(), &prio), "");
  EXPECT_EQ(prio, 5u);
  EXPECT_EQ(Receive(q.get()), "low");
  EXPECT_EQ(Receive(q.get()), "low2");
}

TEST(MqTest, OpenErrors) {
  std::string name = UniqueName("open");
  EXPECT_THAT(mq_open(name.c_str(), O_RDWR), SyscallFailsWithErrno(ENOENT));
  Queue q(name, O_RDWR);
  ASSERT_THAT(q.get(), SyscallSucceeds());
  struct mq_attr attr = {};
  attr.mq_maxmsg = 1;
  attr.mq_msgsize = 1;
  EXPECT_THAT(mq_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600, &attr),
              SyscallFailsWithErrno(EEXIST));
  // Opening an existing queue ignores the attributes.
  mqd_t again = mq_open(name.c_str(), O_RDWR | O_CREAT, 0600, &attr);
  ASSERT_THAT(again, SyscallSucceeds());
  ASSERT_THAT(mq_getattr(again, &attr), SyscallSucceeds());
  EXPECT_EQ(attr.mq_msgsize, 64);
  mq_close(again);
  // Bad attributes for a new queue.
  std::string other = UniqueName("bad");
  attr.mq_maxmsg = 0;
  attr.mq_msgsize = 8;
  EXPECT_THAT(mq_open(other.c_str(), O_RDWR | O_CREAT, 0600, &attr),
              SyscallFailsWithErrno(EINVAL));
  attr.mq_maxmsg = 1;
  attr.mq_msgsize = -1;
  EXPECT_THAT(mq_open(other.c_str(), O_RDWR | O_CREAT, 0600, &attr),
              SyscallFailsWithErrno(EINVAL));
  // Names the kernel refuses (libc strips the leading slash).
  EXPECT_THAT(syscall(SYS_mq_open, "a/b", O_RDWR | O_CREAT, 0600, nullptr),
              SyscallFailsWithErrno(EACCES));
  EXPECT_THAT(syscall(SYS_mq_open, "..", O_RDWR | O_CREAT, 0600, nullptr),
              SyscallFailsWithErrno(EACCES));
  EXPECT_THAT(syscall(SYS_mq_open, "", O_RDWR | O_CREAT, 0600, nullptr),
              SyscallFailsWithErrno(ENOENT));
  std::string longname(256, 'x');
  EXPECT_THAT(
      syscall(SYS_mq_open, longname.c_str(), O_RDWR | O_CREAT, 0600, nullptr),
      SyscallFailsWithErrno(ENAMETOOLONG));
  EXPECT_THAT(mq_unlink(other.c_str()), SyscallFailsWithErrno(ENOENT));
}

TEST(MqTest, DescriptorsAreCloseOnExec) {
  Queue q(UniqueName("cloexec"), O_RDWR);
  ASSERT_THAT(q.get(), SyscallSucceeds());
  EXPECT_THAT(fcntl(q.get(), F_GETFD), SyscallSucceedsWithValue(FD_CLOEXEC));
}

TEST(MqTest, SizesAndAccessModes) {
  Queue q(UniqueName("sizes"), O_RDWR, 2, 16);
  ASSERT_THAT(q.get(), SyscallSucceeds());
  char big[17] = {};
  EXPECT_THAT(mq_send(q.get(), big, 17, 0), SyscallFailsWithErrno(EMSGSIZE));
  EXPECT_THAT(mq_send(q.get(), big, 16, MQ_PRIO_MAX),
              SyscallFailsWithErrno(EINVAL));
  ASSERT_THAT(mq_send(q.get(), big, 16, 0), SyscallSucceeds());
  // The receive buffer must hold the largest message.
  char small[15];
  EXPECT_THAT(mq_receive(q.get(), small, sizeof(small), nullptr),
              SyscallFailsWithErrno(EMSGSIZE));

  mqd_t ro = mq_open(q.name().c_str(), O_RDONLY);
  ASSERT_THAT(ro, SyscallSucceeds());
  EXPECT_THAT(mq_send(ro, "x", 1, 0), SyscallFailsWithErrno(EBADF));
  mq_close(ro);
  mqd_t wo = mq_open(q.name().c_str(), O_WRONLY);
  ASSERT_THAT(wo, SyscallSucceeds());
  char buf[16];
  EXPECT_THAT(mq_receive(wo, buf, sizeof(buf), nullptr),
              SyscallFailsWithErrno(EBADF));
  mq_close(wo);
  int p[2];
  ASSERT_THAT(pipe(p), SyscallSucceeds());
  EXPECT_THAT(mq_send(p[1], "x", 1, 0), SyscallFailsWithErrno(EBADF));
  struct mq_attr attr;
  EXPECT_THAT(mq_getattr(p[0], &attr), SyscallFailsWithErrno(EBADF));
  close(p[0]);
  close(p[1]);
}

TEST(MqTest, NonBlockingAndTimeouts) {
  Queue q(UniqueName("nb"), O_RDWR | O_NONBLOCK, 1, 8);
  ASSERT_THAT(q.get(), SyscallSucceeds());
  EXPECT_EQ(Receive(q.get()), "errno:" + std::to_string(EAGAIN));
  ASSERT_THAT(mq_send(q.get(), "a", 1, 0), SyscallSucceeds());
  EXPECT_THAT(mq_send(q.get(), "b", 1, 0), SyscallFailsWithErrno(EAGAIN));

  // Blocking again, with timeouts.
  struct mq_attr attr = {};
  ASSERT_THAT(mq_setattr(q.get(), &attr, nullptr), SyscallSucceeds());
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_nsec += 20 * 1000 * 1000;
  if (ts.tv_nsec >= 1000000000) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000;
  }
  EXPECT_THAT(mq_timedsend(q.get(), "b", 1, 0, &ts),
              SyscallFailsWithErrno(ETIMEDOUT));
  EXPECT_EQ(Receive(q.get()), "a");
  char buf[8];
  EXPECT_THAT(mq_timedreceive(q.get(), buf, sizeof(buf), nullptr, &ts),
              SyscallFailsWithErrno(ETIMEDOUT));
  struct timespec bad = {0, 1000000000};
  EXPECT_THAT(mq_timedreceive(q.get(), buf, sizeof(buf), nullptr, &bad),
              SyscallFailsWithErrno(EINVAL));
  // Flags other than O_NONBLOCK are refused.
  attr.mq_flags = O_APPEND;
  EXPECT_THAT(mq_setattr(q.get(), &attr, nullptr), SyscallFailsWithErrno(EINVAL));
}

TEST(MqTest, SetAttrOnlyChangesNonBlock) {
  Queue q(UniqueName("attr"), O_RDWR, 3, 32);
  ASSERT_THAT(q.get(), SyscallSucceeds());
  struct mq_attr attr = {}, old = {};
  attr.mq_flags = O_NONBLOCK;
  attr.mq_maxmsg = 99;
  ASSERT_THAT(mq_setattr(q.get(), &attr, &old), SyscallSucceeds());
  EXPECT_EQ(old.mq_flags, 0);
  ASSERT_THAT(mq_getattr(q.get(), &attr), SyscallSucceeds());
  EXPECT_EQ(attr.mq_flags, O_NONBLOCK);
  EXPECT_EQ(attr.mq_maxmsg, 3);
  EXPECT_TRUE(fcntl(q.get(), F_GETFL) & O_NONBLOCK);
}

struct RecvArgs {
  mqd_t q;
  std::string got;
};

void* Receiver(void* p) {
  auto* a = static_cast<RecvArgs*>(p);
  a->got = Receive(a->q);
  return nullptr;
}

TEST(MqTest, BlockedReceiverWakes) {
  Queue q(UniqueName("block"), O_RDWR);
  ASSERT_THAT(q.get(), SyscallSucceeds());
  RecvArgs a{q.get(), ""};
  pthread_t th;
  ASSERT_EQ(pthread_create(&th, nullptr, Receiver, &a), 0);
  usleep(20000);
  ASSERT_THAT(mq_send(q.get(), "wake", 4, 0), SyscallSucceeds());
  ASSERT_EQ(pthread_join(th, nullptr), 0);
  EXPECT_EQ(a.got, "wake");
}

TEST(MqTest, Poll) {
  Queue q(UniqueName("poll"), O_RDWR, 1, 8);
  ASSERT_THAT(q.get(), SyscallSucceeds());
  struct pollfd pfd = {q.get(), POLLIN | POLLOUT, 0};
  ASSERT_THAT(poll(&pfd, 1, 0), SyscallSucceedsWithValue(1));
  EXPECT_EQ(pfd.revents, POLLOUT);
  ASSERT_THAT(mq_send(q.get(), "a", 1, 0), SyscallSucceeds());
  ASSERT_THAT(poll(&pfd, 1, 0), SyscallSucceedsWithValue(1));
  EXPECT_EQ(pfd.revents, POLLIN);
}

TEST(MqTest, UnlinkWhileOpen) {
  std::string name = UniqueName("unlink");
  Queue q(name, O_RDWR);
  ASSERT_THAT(q.get(), SyscallSucceeds());
  ASSERT_THAT(mq_unlink(name.c_str()), SyscallSucceeds());
  EXPECT_THAT(mq_open(name.c_str(), O_RDWR), SyscallFailsWithErrno(ENOENT));
  ASSERT_THAT(mq_send(q.get(), "still", 5, 0), SyscallSucceeds());
  EXPECT_EQ(Receive(q.get()), "still");
  // A new queue may take the name.
  Queue q2(name, O_RDWR);
  ASSERT_THAT(q2.get(), SyscallSucceeds());
}

std::atomic<int> got_signo{0};
std::atomic<int> got_code{0};
std::atomic<int> got_value{0};

void OnSignal(int signo, siginfo_t* info, void*) {
  got_signo = signo;
  got_code = info->si_code;
  got_value = info->si_value.sival_int;
}

TEST(MqTest, NotifySignal) {
  Queue q(UniqueName("notify"), O_RDWR);
  ASSERT_THAT(q.get(), SyscallSucceeds());
  struct sigaction sa = {}, old;
  sa.sa_sigaction = OnSignal;
  sa.sa_flags = SA_SIGINFO;
  ASSERT_THAT(sigaction(SIGUSR2, &sa, &old), SyscallSucceeds());
  got_signo = 0;

  struct sigevent sev = {};
  sev.sigev_notify = SIGEV_SIGNAL;
  sev.sigev_signo = SIGUSR2;
  sev.sigev_value.sival_int = 1234;
  ASSERT_THAT(mq_notify(q.get(), &sev), SyscallSucceeds());
  EXPECT_THAT(mq_notify(q.get(), &sev), SyscallFailsWithErrno(EBUSY));
  sev.sigev_notify = 99;
  EXPECT_THAT(mq_notify(q.get(), &sev), SyscallFailsWithErrno(EINVAL));

  ASSERT_THAT(mq_send(q.get(), "x", 1, 0), SyscallSucceeds());
  ASSERT_TRUE(Eventually([] { return got_signo != 0; }));
  EXPECT_EQ(got_signo, SIGUSR2);
  EXPECT_EQ(got_code, SI_MESGQ);
  EXPECT_EQ(got_value, 1234);

  // Used once: registering again works, and a message into a non-empty
  // queue does not notify.
  got_signo = 0;
  sev.sigev_notify = SIGEV_SIGNAL;
  ASSERT_THAT(mq_notify(q.get(), &sev), SyscallSucceeds());
  ASSERT_THAT(mq_send(q.get(), "y", 1, 0), SyscallSucceeds());
  usleep(10000);
  EXPECT_EQ(got_signo, 0);
  // Unregistering.
  ASSERT_THAT(mq_notify(q.get(), nullptr), SyscallSucceeds());
  ASSERT_THAT(mq_notify(q.get(), &sev), SyscallSucceeds());
  ASSERT_THAT(mq_notify(q.get(), nullptr), SyscallSucceeds());
  ASSERT_THAT(sigaction(SIGUSR2, &old, nullptr), SyscallSucceeds());
}

std::atomic<int> thread_calls{0};
std::atomic<int> thread_value{0};

void OnNotifyThread(union sigval v) {
  thread_value = v.sival_int;
  thread_calls++;
}

TEST(MqTest, NotifyThread) {
  Queue q(UniqueName("thread"), O_RDWR);
  ASSERT_THAT(q.get(), SyscallSucceeds());
  struct sigevent sev = {};
  sev.sigev_notify = SIGEV_THREAD;
  sev.sigev_notify_function = OnNotifyThread;
  sev.sigev_value.sival_int = 77;
  ASSERT_THAT(mq_notify(q.get(), &sev), SyscallSucceeds());
  ASSERT_THAT(mq_send(q.get(), "x", 1, 0), SyscallSucceeds());
  ASSERT_TRUE(Eventually([] { return thread_calls == 1; }));
  EXPECT_EQ(thread_value, 77);
}

// Runs fn in a child with its own mount namespace (so that nothing is
// mounted on the host) and returns its exit status, or -1 to skip.
int InMountNamespace(int (*fn)(const char* dir)) {
  char dir[] = "/tmp/mqfsXXXXXX";
  if (!mkdtemp(dir)) return 100;
  pid_t pid = fork();
  if (pid == 0) {
    if (unshare(CLONE_NEWNS) != 0) _exit(errno == EPERM ? 99 : 101);
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
      _exit(102);
    if (mount("none", dir, "mqueue", 0, nullptr) != 0)
      _exit(errno == EPERM ? 99 : 103);
    _exit(fn(dir));
  }
  int status = 0;
  waitpid(pid, &status, 0);
  rmdir(dir);
  if (!WIFEXITED(status)) return 200;
  return WEXITSTATUS(status) == 99 ? -1 : WEXITSTATUS(status);
}

int CheckFilesystem(const char* dir) {
  std::string name = UniqueName("fs");
  struct mq_attr attr = {};
  attr.mq_maxmsg = 2;
  attr.mq_msgsize = 16;
  mqd_t q = mq_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0640, &attr);
  if (q < 0) return 1;
  int ret = 0;
  std::string path = std::string(dir) + name;
  do {
    if (mq_send(q, "hello", 5, 0) != 0) { ret = 2; break; }
    struct sigevent sev = {};
    sev.sigev_notify = SIGEV_NONE;
    if (mq_notify(q, &sev) != 0) { ret = 3; break; }
    std::ifstream f(path);
    std::string line;
    std::getline(f, line);
    std::ostringstream want;
    want << "QSIZE:5          NOTIFY:1     SIGNO:0     NOTIFY_PID:" << getpid();
    if (line.rfind(want.str(), 0) != 0) {
      fprintf(stderr, "got %s\n", line.c_str());
      ret = 4;
      break;
    }
    struct stat st;
    if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) ||
        (st.st_mode & 07777) != 0640) {
      ret = 5;
      break;
    }
    if (stat(dir, &st) != 0 || (st.st_mode & 07777) != 01777) { ret = 6; break; }
    bool listed = false;
    DIR* d = opendir(dir);
    if (!d) { ret = 7; break; }
    while (struct dirent* e = readdir(d)) {
      if (name.substr(1) == e->d_name) listed = true;
    }
    closedir(d);
    if (!listed) { ret = 8; break; }
    // open(2) of a queue file gives a queue descriptor.
    int fd = open(path.c_str(), O_RDWR);
    if (fd < 0) { ret = 9; break; }
    char buf[16];
    if (mq_receive(fd, buf, sizeof(buf), nullptr) != 5) { ret = 10; break; }
    close(fd);
    // open(O_CREAT) makes a queue with the default attributes.
    std::string made = std::string(dir) + name + "_made";
    fd = open(made.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0) { ret = 11; break; }
    if (mq_getattr(fd, &attr) != 0 || attr.mq_maxmsg <= 0) { ret = 12; break; }
    close(fd);
    mqd_t m = mq_open((name + "_made").c_str(), O_RDWR);
    if (m < 0) { ret = 13; break; }
    mq_close(m);
    if (unlink(made.c_str()) != 0) { ret = 14; break; }
    if (mkdir((std::string(dir) + "/sub").c_str(), 0755) == 0 || errno != EPERM) {
      ret = 15;
      break;
    }
  } while (false);
  mq_close(q);
  if (unlink(path.c_str()) != 0 && ret == 0) ret = 16;
  return ret;
}

TEST(MqTest, Filesystem) {
  int status = InMountNamespace(CheckFilesystem);
  SKIP_IF(status == -1);
  EXPECT_EQ(status, 0);
}

TEST(MqTest, RlimitMsgqueue) {
  // In a child: the limit is the process's. A queue of 10 messages of 1024
  // bytes is charged 10 * (1024 + 48) + 10 * 48 bytes; other queues of the
  // user count too, so only a limit below that is sure to fail.
  pid_t pid = fork();
  if (pid == 0) {
    struct rlimit rl = {11199, 11199};
    if (setrlimit(RLIMIT_MSGQUEUE, &rl) != 0) _exit(1);
    struct mq_attr attr = {};
    attr.mq_maxmsg = 10;
    attr.mq_msgsize = 1024;
    std::string name = UniqueName("rlimit");
    mqd_t q = mq_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600, &attr);
    if (q >= 0) {
      mq_unlink(name.c_str());
      _exit(2);
    }
    _exit(errno == EMFILE ? 0 : 3);
  }
  ASSERT_THAT(pid, SyscallSucceeds());
  int status;
  ASSERT_THAT(waitpid(pid, &status, 0), SyscallSucceedsWithValue(pid));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST(MqTest, ProcLimits) {
  std::ifstream f("/proc/sys/fs/mqueue/msg_max");
  ASSERT_TRUE(f.good());
  long v = 0;
  f >> v;
  EXPECT_GE(v, 1);
  std::ifstream g("/proc/sys/fs/mqueue/queues_max");
  ASSERT_TRUE(g.good());
  g >> v;
  EXPECT_GE(v, 0);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
