// Pseudo-terminals: /dev/ptmx and /dev/pts/N, the line discipline seen
// through them, hang-ups and controlling terminals.

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/file_descriptor.h"
#include "test/util/multiprocess_util.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

// OpenMaster opens /dev/ptmx and unlocks its replica; returns the master
// and sets *name to the replica's path.
FileDescriptor OpenMaster(std::string* name) {
  int m = posix_openpt(O_RDWR | O_NOCTTY);
  EXPECT_THAT(m, SyscallSucceeds());
  EXPECT_THAT(grantpt(m), SyscallSucceeds());
  EXPECT_THAT(unlockpt(m), SyscallSucceeds());
  char* n = ptsname(m);
  EXPECT_NE(n, nullptr);
  if (n != nullptr) *name = n;
  return FileDescriptor(m);
}

std::string ReadSome(int fd) {
  char buf[256];
  ssize_t n = read(fd, buf, sizeof(buf));
  if (n < 0) {
    ADD_FAILURE() << "read: " << strerror(errno);
    return "";
  }
  return std::string(buf, n);
}

TEST(PtyTest, MasterAndReplicaNumbers) {
  std::string name;
  FileDescriptor m = OpenMaster(&name);
  unsigned int n = 0;
  ASSERT_THAT(ioctl(m.get(), TIOCGPTN, &n), SyscallSucceeds());
  EXPECT_EQ(name, "/dev/pts/" + std::to_string(n));
  struct stat st;
  ASSERT_THAT(stat(name.c_str(), &st), SyscallSucceeds());
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(major(st.st_rdev), 136u);
  EXPECT_EQ(minor(st.st_rdev), n);
  EXPECT_EQ(st.st_uid, geteuid());
  struct stat pt;
  ASSERT_THAT(stat("/dev/ptmx", &pt), SyscallSucceeds());
  EXPECT_TRUE(S_ISCHR(pt.st_mode));
  EXPECT_EQ(pt.st_rdev, makedev(5, 2));
  // The replica is not a master.
  FileDescriptor r(open(name.c_str(), O_RDWR | O_NOCTTY));
  ASSERT_THAT(r.get(), SyscallSucceeds());
  EXPECT_THAT(ioctl(r.get(), TIOCGPTN, &n), SyscallFailsWithErrno(ENOTTY));
  EXPECT_TRUE(isatty(r.get()));
  EXPECT_TRUE(isatty(m.get()));
}

TEST(PtyTest, LockedUntilUnlockpt) {
  int m = posix_openpt(O_RDWR | O_NOCTTY);
  ASSERT_THAT(m, SyscallSucceeds());
  FileDescriptor master(m);
  std::string name = ptsname(m);
  int lock = -1;
  ASSERT_THAT(ioctl(m, TIOCGPTLCK, &lock), SyscallSucceeds());
  EXPECT_EQ(lock, 1);
  EXPECT_THAT(open(name.c_str(), O_RDWR | O_NOCTTY), SyscallFailsWithErrno(EIO));
  ASSERT_THAT(unlockpt(m), SyscallSucceeds());
  FileDescriptor r(open(name.c_str(), O_RDWR | O_NOCTTY));
  EXPECT_THAT(r.get(), SyscallSucceeds());
}

TEST(PtyTest, CanonicalInputEchoAndOutput) {
  std::string name;
  FileDescriptor m = OpenMaster(&name);
  FileDescriptor r(open(name.c_str(), O_RDWR | O_NOCTTY));
  ASSERT_THAT(r.get(), SyscallSucceeds());
  struct termios t;
  ASSERT_THAT(tcgetattr(r.get(), &t), SyscallSucceeds());
  EXPECT_TRUE(t.c_lflag & ICANON);
  EXPECT_TRUE(t.c_lflag & ECHO);
  EXPECT_TRUE(t.c_oflag & ONLCR);
  ASSERT_THAT(write(m.get(), "hi\n", 3), SyscallSucceedsWithValue(3));
  EXPECT_EQ(ReadSome(r.get()), "hi\n");
  EXPECT_EQ(ReadSome(m.get()), "hi\r\n");  // the echo
  ASSERT_THAT(write(r.get(), "out\n", 4), SyscallSucceedsWithValue(4));
  EXPECT_EQ(ReadSome(m.get()), "out\r\n");
}

TEST(PtyTest, RawModeAndQueues) {
  std::string name;
  FileDescriptor m = OpenMaster(&name);
  FileDescriptor r(open(name.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK));
  ASSERT_THAT(r.get(), SyscallSucceeds());
  struct termios t;
  ASSERT_THAT(tcgetattr(r.get(), &t), SyscallSucceeds());
  cfmakeraw(&t);
  ASSERT_THAT(tcsetattr(r.get(), TCSANOW, &t), SyscallSucceeds());
  char c;
  EXPECT_THAT(read(r.get(), &c, 1), SyscallFailsWithErrno(EAGAIN));
  ASSERT_THAT(write(m.get(), "xyz", 3), SyscallSucceedsWithValue(3));
  int n = 0;
  for (int i = 0; i < 1000 && n < 3; i++) {
    ASSERT_THAT(ioctl(r.get(), FIONREAD, &n), SyscallSucceeds());
    if (n < 3) usleep(1000);
  }
  EXPECT_EQ(n, 3);
  EXPECT_EQ(ReadSome(r.get()), "xyz");
}

TEST(PtyTest, WindowSize) {
  std::string name;
  FileDescriptor m = OpenMaster(&name);
  FileDescriptor r(open(name.c_str(), O_RDWR | O_NOCTTY));
  struct winsize ws = {24, 80, 0, 0};
  ASSERT_THAT(ioctl(m.get(), TIOCSWINSZ, &ws), SyscallSucceeds());
  struct winsize got = {};
  ASSERT_THAT(ioctl(r.get(), TIOCGWINSZ, &got), SyscallSucceeds());
  EXPECT_EQ(got.ws_row, 24);
  EXPECT_EQ(got.ws_col, 80);
}

TEST(PtyTest, HangUps) {
  std::string name;
  FileDescriptor m = OpenMaster(&name);
  FileDescriptor r(open(name.c_str(), O_RDWR | O_NOCTTY));
  ASSERT_THAT(r.get(), SyscallSucceeds());
  std::string n = name.substr(strlen("/dev/pts/"));
  m.reset();
  // The replica is hung up: reads see end of file, writes fail.
  char c;
  EXPECT_THAT(read(r.get(), &c, 1), SyscallSucceedsWithValue(0));
  EXPECT_THAT(write(r.get(), "x", 1), SyscallFailsWithErrno(EIO));
  struct pollfd p = {r.get(), POLLIN, 0};
  ASSERT_THAT(poll(&p, 1, 0), SyscallSucceedsWithValue(1));
  EXPECT_TRUE(p.revents & POLLHUP);
  EXPECT_THAT(access(name.c_str(), F_OK), SyscallFailsWithErrno(ENOENT));

  // The other way round: the master reads EIO once the replica closed.
  FileDescriptor m2 = OpenMaster(&name);
  FileDescriptor r2(open(name.c_str(), O_RDWR | O_NOCTTY));
  ASSERT_THAT(r2.get(), SyscallSucceeds());
  r2.reset();
  EXPECT_THAT(read(m2.get(), &c, 1), SyscallFailsWithErrno(EIO));
}

TEST(PtyTest, PeerIoctl) {
  std::string name;
  FileDescriptor m = OpenMaster(&name);
  int fd = ioctl(m.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY);
  ASSERT_THAT(fd, SyscallSucceeds());
  FileDescriptor r(fd);
  char link[64];
  ssize_t n =
      readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), link, sizeof(link));
  ASSERT_THAT(n, SyscallSucceeds());
  EXPECT_EQ(std::string(link, n), name);
}

// In a child: a new session opens the replica without O_NOCTTY and gets it
// as its controlling terminal, with itself in the foreground; ^C from the
// master then sends it SIGINT.
TEST(PtyTest, ControllingTerminalAndSignals) {
  std::string name;
  FileDescriptor m = OpenMaster(&name);
  int ready[2];
  ASSERT_THAT(pipe(ready), SyscallSucceeds());
  pid_t pid = fork();
  ASSERT_THAT(pid, SyscallSucceeds());
  if (pid == 0) {
    close(ready[0]);
    if (setsid() < 0) _exit(1);
    int r = open(name.c_str(), O_RDWR);
    if (r < 0) _exit(2);
    pid_t sid = 0, pgrp = 0;
    if (ioctl(r, TIOCGSID, &sid) != 0 || sid != getpid()) _exit(3);
    if (ioctl(r, TIOCGPGRP, &pgrp) != 0 || pgrp != getpid()) _exit(4);
    int tty = open("/dev/tty", O_RDWR);
    if (tty < 0) _exit(5);
    if (write(tty, "T", 1) != 1) _exit(6);
    // Another terminal cannot become ours.
    if (ioctl(r, TIOCSCTTY, 0) != 0) _exit(7);
    if (write(ready[1], "x", 1) != 1) _exit(8);
    pause();
    _exit(9);
  }
  close(ready[1]);
  char c;
  ASSERT_THAT(read(ready[0], &c, 1), SyscallSucceedsWithValue(1));
  close(ready[0]);
  EXPECT_EQ(ReadSome(m.get()), "T");
  ASSERT_THAT(write(m.get(), "\x03", 1), SyscallSucceedsWithValue(1));
  int status = WaitForStatus(pid);
  EXPECT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGINT);
}

TEST(PtyTest, NoControllingTerminalWithNoctty) {
  std::string name;
  FileDescriptor m = OpenMaster(&name);
  pid_t pid = fork();
  ASSERT_THAT(pid, SyscallSucceeds());
  if (pid == 0) {
    if (setsid() < 0) _exit(1);
    int r = open(name.c_str(), O_RDWR | O_NOCTTY);
    if (r < 0) _exit(2);
    pid_t pgrp;
    if (ioctl(r, TIOCGPGRP, &pgrp) == 0 || errno != ENOTTY) _exit(3);
    if (open("/dev/tty", O_RDWR) >= 0 || errno != ENXIO) _exit(4);
    if (ioctl(r, TIOCSCTTY, 0) != 0) _exit(5);
    if (ioctl(r, TIOCGPGRP, &pgrp) != 0 || pgrp != getpgrp()) _exit(6);
    if (ioctl(r, TIOCSPGRP, &pgrp) != 0) _exit(7);
    pid_t bad = 999999;
    if (ioctl(r, TIOCSPGRP, &bad) == 0 || errno != ESRCH) _exit(8);
    // Giving it up hangs up the foreground group: this process.
    signal(SIGHUP, SIG_IGN);
    if (ioctl(r, TIOCNOTTY) != 0) _exit(9);
    if (ioctl(r, TIOCGPGRP, &pgrp) == 0 || errno != ENOTTY) _exit(10);
    _exit(0);
  }
  int status = WaitForStatus(pid);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// A background process group reading its controlling terminal is stopped
// by SIGTTIN; one that ignores SIGTTIN reads EIO instead.
TEST(PtyTest, BackgroundReadStops) {
  std::string name;
  FileDescriptor m = OpenMaster(&name);
  pid_t pid = fork();
  ASSERT_THAT(pid, SyscallSucceeds());
  if (pid == 0) {
    if (setsid() < 0) _exit(1);
    int r = open(name.c_str(), O_RDWR);
    if (r < 0) _exit(2);
    pid_t bg = fork();
    if (bg < 0) _exit(3);
    if (bg == 0) {
      setpgid(0, 0);
      char c;
      read(r, &c, 1);
      _exit(4);
    }
    int status;
    if (waitpid(bg, &status, WUNTRACED) != bg) _exit(5);
    if (!WIFSTOPPED(status) || WSTOPSIG(status) != SIGTTIN) _exit(6);
    kill(bg, SIGKILL);
    waitpid(bg, &status, 0);
    pid_t ign = fork();
    if (ign < 0) _exit(7);
    if (ign == 0) {
      setpgid(0, 0);
      signal(SIGTTIN, SIG_IGN);
      char c;
      _exit(read(r, &c, 1) < 0 && errno == EIO ? 0 : 8);
    }
    if (waitpid(ign, &status, 0) != ign) _exit(9);
    _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 10);
  }
  int status = WaitForStatus(pid);
  EXPECT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
