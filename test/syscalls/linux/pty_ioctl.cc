// Pseudo-terminal requests: packet mode (TIOCPKT), faked input (TIOCSTI),
// console redirection (TIOCCONS) and TIOCNOTTY from a process that does
// not lead its session (drivers/tty/pty.c, tty_io.c).

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/file_descriptor.h"
#include "test/util/multiprocess_util.h"
#include "test/util/syscall_matchers.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

constexpr uid_t kNobody = 65534;

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

// ReadReady waits (up to 10 s: the host's line discipline runs in a work
// queue) until fd is readable and reads what is there.
std::string ReadReady(int fd) {
  struct pollfd p = {fd, POLLIN, 0};
  if (poll(&p, 1, 10000) != 1) {
    ADD_FAILURE() << "nothing to read";
    return "";
  }
  char buf[256];
  ssize_t n = read(fd, buf, sizeof(buf));
  if (n < 0) {
    ADD_FAILURE() << "read: " << strerror(errno);
    return "";
  }
  return std::string(buf, n);
}

std::string Byte(int c) { return std::string(1, static_cast<char>(c)); }

TEST(PtyPacketTest, StatusBytes) {
  std::string name;
  FileDescriptor m = OpenMaster(&name);
  FileDescriptor r(open(name.c_str(), O_RDWR | O_NOCTTY));
  ASSERT_THAT(r.get(), SyscallSucceeds());
  int on = 1, got = -1;
  ASSERT_THAT(ioctl(m.get(), TIOCPKT, &on), SyscallSucceeds());
  ASSERT_THAT(ioctl(m.get(), TIOCGPKT, &got), SyscallSucceeds());
  EXPECT_EQ(got, 1);
  // Only the master has a packet mode.
  EXPECT_THAT(ioctl(r.get(), TIOCPKT, &on), SyscallFailsWithErrno(ENOTTY));
  EXPECT_THAT(ioctl(r.get(), TIOCGPKT, &got), SyscallFailsWithErrno(ENOTTY));

  // Output comes after a TIOCPKT_DATA byte.
  ASSERT_THAT(write(r.get(), "hi", 2), SyscallSucceedsWithValue(2));
  EXPECT_EQ(ReadReady(m.get()), Byte(TIOCPKT_DATA) + "hi");

  // A flush through the replica is an event of its own, with POLLPRI.
  ASSERT_THAT(tcflush(r.get(), TCIOFLUSH), SyscallSucceeds());
  struct pollfd p = {m.get(), POLLPRI, 0};
  ASSERT_THAT(poll(&p, 1, 10000), SyscallSucceedsWithValue(1));
  EXPECT_TRUE(p.revents & POLLPRI);
  EXPECT_EQ(ReadReady(m.get()),
            Byte(TIOCPKT_FLUSHREAD | TIOCPKT_FLUSHWRITE));

  // Turning ^S/^Q flow control off and on.
  struct termios tio;
  ASSERT_THAT(tcgetattr(r.get(), &tio), SyscallSucceeds());
  ASSERT_TRUE(tio.c_iflag & IXON);
  tio.c_iflag &= ~IXON;
  ASSERT_THAT(tcsetattr(r.get(), TCSANOW, &tio), SyscallSucceeds());
  EXPECT_EQ(ReadReady(m.get()), Byte(TIOCPKT_NOSTOP));
  tio.c_iflag |= IXON;
  ASSERT_THAT(tcsetattr(r.get(), TCSANOW, &tio), SyscallSucceeds());
  EXPECT_EQ(ReadReady(m.get()), Byte(TIOCPKT_DOSTOP));

  // ^S typed at the terminal stops output, ^Q starts it again.
  ASSERT_THAT(write(m.get(), "\x13", 1), SyscallSucceedsWithValue(1));
  EXPECT_EQ(ReadReady(m.get()), Byte(TIOCPKT_STOP));
  ASSERT_THAT(write(m.get(), "\x11", 1), SyscallSucceedsWithValue(1));
  EXPECT_EQ(ReadReady(m.get()), Byte(TIOCPKT_START));

  // Off again: plain data.
  int off = 0;
  ASSERT_THAT(ioctl(m.get(), TIOCPKT, &off), SyscallSucceeds());
  ASSERT_THAT(ioctl(m.get(), TIOCGPKT, &got), SyscallSucceeds());
  EXPECT_EQ(got, 0);
  ASSERT_THAT(write(r.get(), "yo", 2), SyscallSucceedsWithValue(2));
  EXPECT_EQ(ReadReady(m.get()), "yo");
}

// Events before packet mode was turned on are forgotten.
TEST(PtyPacketTest, EnablingForgetsEarlierEvents) {
  std::string name;
  FileDescriptor m = OpenMaster(&name);
  FileDescriptor r(open(name.c_str(), O_RDWR | O_NOCTTY));
  ASSERT_THAT(r.get(), SyscallSucceeds());
  ASSERT_THAT(tcflush(r.get(), TCIFLUSH), SyscallSucceeds());
  int on = 1;
  ASSERT_THAT(ioctl(m.get(), TIOCPKT, &on), SyscallSucceeds());
  ASSERT_THAT(write(r.get(), "a", 1), SyscallSucceedsWithValue(1));
  EXPECT_EQ(ReadReady(m.get()), Byte(TIOCPKT_DATA) + "a");
}

bool LegacyTiocsti() {
  std::ifstream f("/proc/sys/dev/tty/legacy_tiocsti");
  int v = 1;
  if (f >> v) return v != 0;
  // Before Linux 6.2 there is no such switch: the old behaviour.
  return true;
}

// As root (CAP_SYS_ADMIN), any terminal.
TEST(PtyStiTest, FakesInputAndOutput) {
  std::string name;
  FileDescriptor m = OpenMaster(&name);
  FileDescriptor r(open(name.c_str(), O_RDWR | O_NOCTTY));
  ASSERT_THAT(r.get(), SyscallSucceeds());
  for (char c : std::string("x\n")) {
    ASSERT_THAT(ioctl(r.get(), TIOCSTI, &c), SyscallSucceeds());
  }
  EXPECT_EQ(ReadReady(r.get()), "x\n");
  // Echoed like typed input.
  std::string echo;
  while (echo.size() < 3) echo += ReadReady(m.get());
  EXPECT_EQ(echo, "x\r\n");
  // Through the master it is output for the master to read.
  char z = 'z';
  ASSERT_THAT(ioctl(m.get(), TIOCSTI, &z), SyscallSucceeds());
  EXPECT_EQ(ReadReady(m.get()), "z");
  EXPECT_THAT(ioctl(r.get(), TIOCSTI, nullptr), SyscallFailsWithErrno(EFAULT));
}

// Without CAP_SYS_ADMIN only one's controlling terminal, and only with
// legacy_tiocsti on.
TEST(PtyStiTest, UnprivilegedNeedsControllingTerminal) {
  bool legacy = LegacyTiocsti();
  std::string name;
  FileDescriptor m = OpenMaster(&name);
  int mfd = m.get();
  pid_t pid = fork();
  ASSERT_THAT(pid, SyscallSucceeds());
  if (pid == 0) {
    if (setsid() < 0) _exit(1);
    int other = open(name.c_str(), O_RDWR | O_NOCTTY);
    if (other < 0) _exit(2);
    // Another pty, opened before becoming nobody, that is not ours.
    int m2 = posix_openpt(O_RDWR | O_NOCTTY);
    if (m2 < 0 || grantpt(m2) != 0 || unlockpt(m2) != 0) _exit(3);
    int r2 = open(ptsname(m2), O_RDWR | O_NOCTTY);
    if (r2 < 0) _exit(4);
    int ctty = open(name.c_str(), O_RDWR);
    if (ctty < 0) _exit(5);
    if (setresgid(kNobody, kNobody, kNobody) != 0) _exit(6);
    if (setresuid(kNobody, kNobody, kNobody) != 0) _exit(7);
    char c = 'q';
    int want = legacy ? EPERM : EIO;
    if (ioctl(r2, TIOCSTI, &c) == 0 || errno != want) _exit(8);
    if (ioctl(mfd, TIOCSTI, &c) == 0 || errno != want) _exit(9);
    int rc = ioctl(ctty, TIOCSTI, &c);
    if (legacy ? rc != 0 : (rc == 0 || errno != EIO)) _exit(10);
    _exit(0);
  }
  int status = WaitForStatus(pid);
  EXPECT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(PtyConsTest, NeedsCapSysAdminAndAReplica) {
  std::string name;
  FileDescriptor m = OpenMaster(&name);
  FileDescriptor r(open(name.c_str(), O_RDWR | O_NOCTTY));
  ASSERT_THAT(r.get(), SyscallSucceeds());
  // A master is refused before any privilege check.
  EXPECT_THAT(ioctl(m.get(), TIOCCONS), SyscallFailsWithErrno(EINVAL));
  int mfd = m.get(), rfd = r.get();
  pid_t pid = fork();
  ASSERT_THAT(pid, SyscallSucceeds());
  if (pid == 0) {
    if (setresuid(kNobody, kNobody, kNobody) != 0) _exit(1);
    if (ioctl(mfd, TIOCCONS) == 0 || errno != EINVAL) _exit(2);
    _exit(ioctl(rfd, TIOCCONS) < 0 && errno == EPERM ? 0 : 3);
  }
  int status = WaitForStatus(pid);
  EXPECT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// Natively this would redirect the host's console: only in the sandbox.
TEST(PtyConsTest, OneTerminalAtATime) {
  SKIP_IF(!IsRunningOnSandbox());
  std::string name, name2;
  FileDescriptor m = OpenMaster(&name);
  FileDescriptor m2 = OpenMaster(&name2);
  FileDescriptor r(open(name.c_str(), O_RDWR | O_NOCTTY));
  FileDescriptor r2(open(name2.c_str(), O_RDWR | O_NOCTTY));
  FileDescriptor ro(open(name2.c_str(), O_RDONLY | O_NOCTTY));
  ASSERT_THAT(ro.get(), SyscallSucceeds());
  EXPECT_THAT(ioctl(ro.get(), TIOCCONS), SyscallFailsWithErrno(EBADF));
  ASSERT_THAT(ioctl(r.get(), TIOCCONS), SyscallSucceeds());
  EXPECT_THAT(ioctl(r2.get(), TIOCCONS), SyscallFailsWithErrno(EBUSY));
  // Once the first hangs up (its master closed) the console is free.
  m.reset();
  EXPECT_THAT(ioctl(r2.get(), TIOCCONS), SyscallSucceeds());
}

int TtyNr() {
  std::ifstream f("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(f)),
                   std::istreambuf_iterator<char>());
  std::istringstream in(stat.substr(stat.rfind(')') + 2));
  std::string state;
  long ppid, pgrp, session, tty_nr;
  in >> state >> ppid >> pgrp >> session >> tty_nr;
  return static_cast<int>(tty_nr);
}

// TIOCNOTTY from a process that does not lead its session detaches only
// that process (and what it forks later); the session keeps the terminal
// and nobody gets SIGHUP.
TEST(PtyNottyTest, NonLeaderDetachesOnlyItself) {
  std::string name;
  FileDescriptor m = OpenMaster(&name);
  pid_t pid = fork();
  ASSERT_THAT(pid, SyscallSucceeds());
  if (pid == 0) {
    if (setsid() < 0) _exit(1);
    int r = open(name.c_str(), O_RDWR);
    if (r < 0) _exit(2);
    if (TtyNr() == 0) _exit(3);
    signal(SIGHUP, SIG_DFL);
    pid_t child = fork();
    if (child < 0) _exit(4);
    if (child == 0) {
      if (ioctl(r, TIOCNOTTY) != 0) _exit(10);
      if (open("/dev/tty", O_RDWR) >= 0 || errno != ENXIO) _exit(11);
      pid_t pgrp;
      if (ioctl(r, TIOCGPGRP, &pgrp) == 0 || errno != ENOTTY) _exit(12);
      if (TtyNr() != 0) _exit(13);
      // Not the controlling terminal any more.
      if (ioctl(r, TIOCNOTTY) == 0 || errno != ENOTTY) _exit(14);
      pid_t grandchild = fork();
      if (grandchild == 0) {
        _exit(open("/dev/tty", O_RDWR) < 0 && errno == ENXIO ? 0 : 1);
      }
      int st;
      if (waitpid(grandchild, &st, 0) != grandchild) _exit(15);
      _exit(WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 16);
    }
    int st;
    if (waitpid(child, &st, 0) != child) _exit(5);
    if (!WIFEXITED(st)) _exit(6);
    if (WEXITSTATUS(st) != 0) _exit(WEXITSTATUS(st));
    // The leader still has it.
    int tty = open("/dev/tty", O_RDWR);
    if (tty < 0) _exit(7);
    pid_t pgrp;
    if (ioctl(r, TIOCGPGRP, &pgrp) != 0 || pgrp != getpgrp()) _exit(8);
    if (TtyNr() == 0) _exit(9);
    _exit(0);
  }
  int status = WaitForStatus(pid);
  EXPECT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
