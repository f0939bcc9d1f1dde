// Unix domain sockets: socket(2) and socketpair(2), names (paths, abstract
// names, autobind), connections, the three types' data semantics, control
// messages, options and readiness (net/unix/af_unix.c).

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/file_descriptor.h"
#include "test/util/fs_util.h"
#include "test/util/signal_util.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

struct Pair {
  FileDescriptor a, b;
};

Pair MakePair(int type, int flags = 0) {
  int fds[2] = {-1, -1};
  EXPECT_THAT(socketpair(AF_UNIX, type | SOCK_CLOEXEC | flags, 0, fds),
              SyscallSucceeds());
  return {FileDescriptor(fds[0]), FileDescriptor(fds[1])};
}

// Addr builds a sockaddr_un for path and returns its length in *len.
sockaddr_un Addr(const std::string& path, socklen_t* len) {
  sockaddr_un a = {};
  a.sun_family = AF_UNIX;
  memcpy(a.sun_path, path.data(), path.size());
  *len = offsetof(sockaddr_un, sun_path) + path.size();
  return a;
}

// A unique abstract name for this process.
std::string Abstract(const std::string& tag) {
  return std::string("\0pyvisor-", 9) + tag + "-" + std::to_string(getpid());
}

FileDescriptor Listener(int type, const std::string& name, int backlog = 5) {
  FileDescriptor s(socket(AF_UNIX, type | SOCK_CLOEXEC, 0));
  EXPECT_TRUE(s.valid());
  socklen_t len;
  sockaddr_un a = Addr(name, &len);
  EXPECT_THAT(bind(s.get(), reinterpret_cast<sockaddr*>(&a), len),
              SyscallSucceeds());
  EXPECT_THAT(listen(s.get(), backlog), SyscallSucceeds());
  return s;
}

int Connect(int fd, const std::string& name) {
  socklen_t len;
  sockaddr_un a = Addr(name, &len);
  return connect(fd, reinterpret_cast<sockaddr*>(&a), len);
}

TEST(UnixSocketTest, CreationErrors) {
  EXPECT_THAT(socket(AF_UNIX, SOCK_STREAM, 2),
              SyscallFailsWithErrno(EPROTONOSUPPORT));
  EXPECT_THAT(socket(AF_UNIX, SOCK_RDM, 0),
              SyscallFailsWithErrno(ESOCKTNOSUPPORT));
  EXPECT_THAT(socket(AF_UNIX, SOCK_STREAM | 0x100000, 0),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(socket(1000, SOCK_STREAM, 0),
              SyscallFailsWithErrno(EAFNOSUPPORT));
  int fds[2];
  EXPECT_THAT(socketpair(AF_INET, SOCK_STREAM, 0, fds),
              SyscallFailsWithErrno(EOPNOTSUPP));
  EXPECT_THAT(syscall(SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, nullptr),
              SyscallFailsWithErrno(EFAULT));
}

TEST(UnixSocketTest, FileAttributes) {
  Pair p = MakePair(SOCK_STREAM, SOCK_NONBLOCK);
  struct stat st;
  ASSERT_THAT(fstat(p.a.get(), &st), SyscallSucceeds());
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0777);
  EXPECT_EQ(fcntl(p.a.get(), F_GETFL), O_RDWR | O_NONBLOCK);
  EXPECT_EQ(fcntl(p.b.get(), F_GETFD), FD_CLOEXEC);
  int type = 0;
  socklen_t len = sizeof(type);
  ASSERT_THAT(getsockopt(p.a.get(), SOL_SOCKET, SO_TYPE, &type, &len),
              SyscallSucceeds());
  EXPECT_EQ(type, SOCK_STREAM);
  EXPECT_EQ(len, sizeof(type));
  int domain = 0;
  ASSERT_THAT(getsockopt(p.a.get(), SOL_SOCKET, SO_DOMAIN, &domain, &len),
              SyscallSucceeds());
  EXPECT_EQ(domain, AF_UNIX);
  int proto = -1;
  ASSERT_THAT(getsockopt(p.a.get(), SOL_SOCKET, SO_PROTOCOL, &proto, &len),
              SyscallSucceeds());
  EXPECT_EQ(proto, 0);
}

TEST(UnixSocketTest, NotASocket) {
  int fds[2];
  ASSERT_THAT(pipe(fds), SyscallSucceeds());
  FileDescriptor r(fds[0]), w(fds[1]);
  int v;
  socklen_t len = sizeof(v);
  EXPECT_THAT(getsockopt(r.get(), SOL_SOCKET, SO_TYPE, &v, &len),
              SyscallFailsWithErrno(ENOTSOCK));
  EXPECT_THAT(listen(r.get(), 1), SyscallFailsWithErrno(ENOTSOCK));
  EXPECT_THAT(listen(-1, 1), SyscallFailsWithErrno(EBADF));
}

TEST(UnixSocketTest, StreamDataAndNames) {
  Pair p = MakePair(SOCK_STREAM);
  ASSERT_THAT(write(p.a.get(), "abc", 3), SyscallSucceedsWithValue(3));
  ASSERT_THAT(send(p.a.get(), "def", 3, 0), SyscallSucceedsWithValue(3));
  char buf[16] = {};
  EXPECT_THAT(read(p.b.get(), buf, sizeof(buf)), SyscallSucceedsWithValue(6));
  EXPECT_STREQ(buf, "abcdef");

  sockaddr_un a = {};
  socklen_t len = sizeof(a);
  ASSERT_THAT(getsockname(p.a.get(), reinterpret_cast<sockaddr*>(&a), &len),
              SyscallSucceeds());
  EXPECT_EQ(len, sizeof(sa_family_t));
  EXPECT_EQ(a.sun_family, AF_UNIX);
  len = sizeof(a);
  ASSERT_THAT(getpeername(p.a.get(), reinterpret_cast<sockaddr*>(&a), &len),
              SyscallSucceeds());
  EXPECT_EQ(len, sizeof(sa_family_t));
}

TEST(UnixSocketTest, PathBindConnectAccept) {
  TempDir dir("/tmp");
  const std::string path = dir.Join("sock");
  FileDescriptor l = Listener(SOCK_STREAM, path);
  struct stat st;
  ASSERT_THAT(stat(path.c_str(), &st), SyscallSucceeds());
  EXPECT_TRUE(S_ISSOCK(st.st_mode));

  // A second socket cannot take the name; a bound socket cannot rebind.
  FileDescriptor other(socket(AF_UNIX, SOCK_STREAM, 0));
  socklen_t len;
  sockaddr_un a = Addr(path, &len);
  EXPECT_THAT(bind(other.get(), reinterpret_cast<sockaddr*>(&a), len),
              SyscallFailsWithErrno(EADDRINUSE));
  sockaddr_un a2 = Addr(dir.Join("sock2"), &len);
  EXPECT_THAT(bind(l.get(), reinterpret_cast<sockaddr*>(&a2), len),
              SyscallFailsWithErrno(EINVAL));

  FileDescriptor c(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_THAT(Connect(c.get(), path), SyscallSucceeds());
  EXPECT_THAT(Connect(c.get(), path), SyscallFailsWithErrno(EISCONN));
  sockaddr_un peer = {};
  socklen_t plen = sizeof(peer);
  FileDescriptor s(accept4(l.get(), reinterpret_cast<sockaddr*>(&peer), &plen,
                           SOCK_NONBLOCK | SOCK_CLOEXEC));
  ASSERT_TRUE(s.valid()) << strerror(errno);
  EXPECT_EQ(plen, sizeof(sa_family_t));
  EXPECT_EQ(fcntl(s.get(), F_GETFL), O_RDWR | O_NONBLOCK);
  EXPECT_EQ(fcntl(s.get(), F_GETFD), FD_CLOEXEC);

  // Both ends report the listener's path.
  sockaddr_un got = {};
  socklen_t glen = sizeof(got);
  ASSERT_THAT(getpeername(c.get(), reinterpret_cast<sockaddr*>(&got), &glen),
              SyscallSucceeds());
  EXPECT_EQ(glen, offsetof(sockaddr_un, sun_path) + path.size() + 1);
  EXPECT_EQ(std::string(got.sun_path), path);
  glen = sizeof(got);
  ASSERT_THAT(getsockname(s.get(), reinterpret_cast<sockaddr*>(&got), &glen),
              SyscallSucceeds());
  EXPECT_EQ(std::string(got.sun_path), path);
  // A short buffer gets a cut address and the full length.
  glen = 4;
  memset(&got, 0, sizeof(got));
  ASSERT_THAT(getsockname(s.get(), reinterpret_cast<sockaddr*>(&got), &glen),
              SyscallSucceeds());
  EXPECT_EQ(glen, offsetof(sockaddr_un, sun_path) + path.size() + 1);
  EXPECT_EQ(got.sun_path[2], 0);

  ASSERT_THAT(write(c.get(), "x", 1), SyscallSucceedsWithValue(1));
  char ch;
  EXPECT_THAT(read(s.get(), &ch, 1), SyscallSucceedsWithValue(1));
}

TEST(UnixSocketTest, ConnectErrors) {
  TempDir dir("/tmp");
  FileDescriptor c(socket(AF_UNIX, SOCK_STREAM, 0));
  EXPECT_THAT(Connect(c.get(), dir.Join("missing")),
              SyscallFailsWithErrno(ENOENT));
  ASSERT_TRUE(WriteFile(dir.Join("file"), "x"));
  EXPECT_THAT(Connect(c.get(), dir.Join("file")),
              SyscallFailsWithErrno(ECONNREFUSED));
  // A socket bound but not listening refuses; so does a closed one.
  {
    FileDescriptor b(socket(AF_UNIX, SOCK_STREAM, 0));
    socklen_t len;
    sockaddr_un a = Addr(dir.Join("bound"), &len);
    ASSERT_THAT(bind(b.get(), reinterpret_cast<sockaddr*>(&a), len),
                SyscallSucceeds());
    EXPECT_THAT(Connect(c.get(), dir.Join("bound")),
                SyscallFailsWithErrno(ECONNREFUSED));
  }
  EXPECT_THAT(Connect(c.get(), dir.Join("bound")),
              SyscallFailsWithErrno(ECONNREFUSED));
  // Types must match.
  FileDescriptor l = Listener(SOCK_SEQPACKET, dir.Join("seq"));
  EXPECT_THAT(Connect(c.get(), dir.Join("seq")),
              SyscallFailsWithErrno(EPROTOTYPE));
  // Only the family is too short an address to connect to.
  sockaddr_un a = {};
  a.sun_family = AF_UNIX;
  EXPECT_THAT(connect(c.get(), reinterpret_cast<sockaddr*>(&a),
                      sizeof(sa_family_t)),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(connect(c.get(), reinterpret_cast<sockaddr*>(&a), 200),
              SyscallFailsWithErrno(EINVAL));
}

TEST(UnixSocketTest, AbstractNamesAndAutobind) {
  const std::string name = Abstract("abs");
  {
    FileDescriptor l = Listener(SOCK_STREAM, name);
    FileDescriptor dup(socket(AF_UNIX, SOCK_STREAM, 0));
    socklen_t len;
    sockaddr_un a = Addr(name, &len);
    EXPECT_THAT(bind(dup.get(), reinterpret_cast<sockaddr*>(&a), len),
                SyscallFailsWithErrno(EADDRINUSE));
    sockaddr_un got = {};
    socklen_t glen = sizeof(got);
    ASSERT_THAT(getsockname(l.get(), reinterpret_cast<sockaddr*>(&got), &glen),
                SyscallSucceeds());
    EXPECT_EQ(glen, len);
    EXPECT_EQ(std::string(got.sun_path, glen - 2), name);
    FileDescriptor c(socket(AF_UNIX, SOCK_STREAM, 0));
    EXPECT_THAT(Connect(c.get(), name), SyscallSucceeds());
  }
  // The name goes away with its socket.
  FileDescriptor c(socket(AF_UNIX, SOCK_STREAM, 0));
  EXPECT_THAT(Connect(c.get(), name), SyscallFailsWithErrno(ECONNREFUSED));
  FileDescriptor again = Listener(SOCK_STREAM, name);

  // Binding only the family picks a name of five hex digits.
  FileDescriptor ab(socket(AF_UNIX, SOCK_DGRAM, 0));
  sockaddr_un a = {};
  a.sun_family = AF_UNIX;
  ASSERT_THAT(bind(ab.get(), reinterpret_cast<sockaddr*>(&a),
                   sizeof(sa_family_t)),
              SyscallSucceeds());
  sockaddr_un got = {};
  socklen_t glen = sizeof(got);
  ASSERT_THAT(getsockname(ab.get(), reinterpret_cast<sockaddr*>(&got), &glen),
              SyscallSucceeds());
  EXPECT_EQ(glen, offsetof(sockaddr_un, sun_path) + 6);
  EXPECT_EQ(got.sun_path[0], 0);
  for (int i = 1; i < 6; i++) {
    EXPECT_TRUE(isxdigit(got.sun_path[i])) << i;
  }
}

TEST(UnixSocketTest, ListenAndAcceptRules) {
  FileDescriptor s(socket(AF_UNIX, SOCK_STREAM, 0));
  EXPECT_THAT(listen(s.get(), 1), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(accept(s.get(), nullptr, nullptr), SyscallFailsWithErrno(EINVAL));
  FileDescriptor d(socket(AF_UNIX, SOCK_DGRAM, 0));
  EXPECT_THAT(listen(d.get(), 1), SyscallFailsWithErrno(EOPNOTSUPP));
  const std::string name = Abstract("acc");
  FileDescriptor l = Listener(SOCK_STREAM, name);
  EXPECT_THAT(accept4(l.get(), nullptr, nullptr, 0x1), SyscallFailsWithErrno(EINVAL));
  int on = 0;
  socklen_t len = sizeof(on);
  ASSERT_THAT(getsockopt(l.get(), SOL_SOCKET, SO_ACCEPTCONN, &on, &len),
              SyscallSucceeds());
  EXPECT_EQ(on, 1);
  ASSERT_THAT(fcntl(l.get(), F_SETFL, O_NONBLOCK), SyscallSucceeds());
  EXPECT_THAT(accept(l.get(), nullptr, nullptr), SyscallFailsWithErrno(EAGAIN));
}

TEST(UnixSocketTest, FullBacklog) {
  const std::string name = Abstract("backlog");
  // A backlog of 0 still admits one connection (the queue holds
  // backlog + 1).
  FileDescriptor l = Listener(SOCK_STREAM, name, 0);
  FileDescriptor c1(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0));
  ASSERT_THAT(Connect(c1.get(), name), SyscallSucceeds());
  FileDescriptor c2(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0));
  EXPECT_THAT(Connect(c2.get(), name), SyscallFailsWithErrno(EAGAIN));
  pollfd pfd = {l.get(), POLLIN, 0};
  EXPECT_THAT(poll(&pfd, 1, 0), SyscallSucceedsWithValue(1));
  FileDescriptor s(accept(l.get(), nullptr, nullptr));
  ASSERT_TRUE(s.valid());
  EXPECT_THAT(Connect(c2.get(), name), SyscallSucceeds());
}

TEST(UnixSocketTest, BlockedConnectWaitsForRoom) {
  const std::string name = Abstract("wait");
  FileDescriptor l = Listener(SOCK_STREAM, name, 0);
  FileDescriptor c1(socket(AF_UNIX, SOCK_STREAM, 0));
  ASSERT_THAT(Connect(c1.get(), name), SyscallSucceeds());
  std::thread t([&] {
    usleep(100 * 1000);
    int fd = accept(l.get(), nullptr, nullptr);
    EXPECT_GE(fd, 0);
    close(fd);
  });
  FileDescriptor c2(socket(AF_UNIX, SOCK_STREAM, 0));
  EXPECT_THAT(Connect(c2.get(), name), SyscallSucceeds());
  t.join();
}

TEST(UnixSocketTest, StreamShutdownAndClose) {
  Pair p = MakePair(SOCK_STREAM);
  ASSERT_THAT(shutdown(p.a.get(), SHUT_WR), SyscallSucceeds());
  char c;
  EXPECT_THAT(read(p.b.get(), &c, 1), SyscallSucceedsWithValue(0));
  EXPECT_THAT(send(p.a.get(), "x", 1, MSG_NOSIGNAL),
              SyscallFailsWithErrno(EPIPE));
  // The other direction still works.
  ASSERT_THAT(write(p.b.get(), "y", 1), SyscallSucceedsWithValue(1));
  EXPECT_THAT(read(p.a.get(), &c, 1), SyscallSucceedsWithValue(1));
  EXPECT_THAT(shutdown(p.a.get(), 3), SyscallFailsWithErrno(EINVAL));

  pollfd pfd = {p.b.get(), POLLIN | POLLRDHUP, 0};
  ASSERT_THAT(poll(&pfd, 1, 0), SyscallSucceedsWithValue(1));
  EXPECT_EQ(pfd.revents & (POLLIN | POLLRDHUP), POLLIN | POLLRDHUP);

  p.a.reset();
  EXPECT_THAT(read(p.b.get(), &c, 1), SyscallSucceedsWithValue(0));
  EXPECT_THAT(send(p.b.get(), "x", 1, MSG_NOSIGNAL),
              SyscallFailsWithErrno(EPIPE));
  pfd = {p.b.get(), POLLIN | POLLOUT, 0};
  ASSERT_THAT(poll(&pfd, 1, 0), SyscallSucceedsWithValue(1));
  EXPECT_EQ(pfd.revents & POLLHUP, POLLHUP);
}

TEST(UnixSocketTest, CloseWithUnreadDataResets) {
  Pair p = MakePair(SOCK_STREAM);
  ASSERT_THAT(write(p.b.get(), "x", 1), SyscallSucceedsWithValue(1));
  p.a.reset();  // Closes with "x" unread.
  char c;
  EXPECT_THAT(read(p.b.get(), &c, 1), SyscallFailsWithErrno(ECONNRESET));
  EXPECT_THAT(read(p.b.get(), &c, 1), SyscallSucceedsWithValue(0));
}

TEST(UnixSocketTest, SigpipeWithoutNosignal) {
  Pair p = MakePair(SOCK_STREAM);
  p.b.reset();
  ScopedSignalMask mask(SIG_BLOCK, SignalSet({SIGPIPE}));
  EXPECT_THAT(write(p.a.get(), "x", 1), SyscallFailsWithErrno(EPIPE));
  sigset_t pending;
  sigpending(&pending);
  EXPECT_TRUE(sigismember(&pending, SIGPIPE));
  siginfo_t info;
  timespec zero = {0, 0};
  EXPECT_THAT(sigtimedwait(&pending, &info, &zero),
              SyscallSucceedsWithValue(SIGPIPE));
  EXPECT_THAT(send(p.a.get(), "x", 1, MSG_NOSIGNAL),
              SyscallFailsWithErrno(EPIPE));
  sigpending(&pending);
  EXPECT_FALSE(sigismember(&pending, SIGPIPE));
}

TEST(UnixSocketTest, UnconnectedStream) {
  FileDescriptor s(socket(AF_UNIX, SOCK_STREAM, 0));
  char c;
  EXPECT_THAT(recv(s.get(), &c, 1, 0), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(send(s.get(), "x", 1, MSG_NOSIGNAL),
              SyscallFailsWithErrno(ENOTCONN));
  sockaddr_un a = {};
  socklen_t len = sizeof(a);
  EXPECT_THAT(getpeername(s.get(), reinterpret_cast<sockaddr*>(&a), &len),
              SyscallFailsWithErrno(ENOTCONN));
  pollfd pfd = {s.get(), POLLIN | POLLOUT, 0};
  ASSERT_THAT(poll(&pfd, 1, 0), SyscallSucceedsWithValue(1));
  EXPECT_EQ(pfd.revents, POLLOUT | POLLHUP);
}

TEST(UnixSocketTest, DgramBoundaries) {
  Pair p = MakePair(SOCK_DGRAM);
  ASSERT_THAT(send(p.a.get(), "hello", 5, 0), SyscallSucceedsWithValue(5));
  ASSERT_THAT(send(p.a.get(), "", 0, 0), SyscallSucceedsWithValue(0));
  ASSERT_THAT(send(p.a.get(), "world!", 6, 0), SyscallSucceedsWithValue(6));
  int n = 0;
  ASSERT_THAT(ioctl(p.b.get(), FIONREAD, &n), SyscallSucceeds());
  EXPECT_EQ(n, 5);
  char buf[16] = {};
  EXPECT_THAT(recv(p.b.get(), buf, 2, MSG_PEEK), SyscallSucceedsWithValue(2));
  EXPECT_THAT(recv(p.b.get(), buf, 2, MSG_TRUNC | MSG_PEEK),
              SyscallSucceedsWithValue(5));
  iovec iov = {buf, 3};
  msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  EXPECT_THAT(recvmsg(p.b.get(), &msg, 0), SyscallSucceedsWithValue(3));
  EXPECT_EQ(msg.msg_flags & MSG_TRUNC, MSG_TRUNC);
  EXPECT_EQ(std::string(buf, 3), "hel");
  EXPECT_THAT(recv(p.b.get(), buf, sizeof(buf), 0), SyscallSucceedsWithValue(0));
  EXPECT_THAT(recv(p.b.get(), buf, sizeof(buf), 0), SyscallSucceedsWithValue(6));
  EXPECT_THAT(recv(p.b.get(), buf, sizeof(buf), MSG_DONTWAIT),
              SyscallFailsWithErrno(EAGAIN));
}

TEST(UnixSocketTest, SeqpacketBoundaries) {
  Pair p = MakePair(SOCK_SEQPACKET);
  ASSERT_THAT(send(p.a.get(), "abcdef", 6, 0), SyscallSucceedsWithValue(6));
  ASSERT_THAT(send(p.a.get(), "gh", 2, 0), SyscallSucceedsWithValue(2));
  char buf[16] = {};
  EXPECT_THAT(recv(p.b.get(), buf, 4, 0), SyscallSucceedsWithValue(4));
  EXPECT_THAT(recv(p.b.get(), buf, sizeof(buf), 0), SyscallSucceedsWithValue(2));
  EXPECT_EQ(std::string(buf, 2), "gh");
  p.a.reset();
  EXPECT_THAT(recv(p.b.get(), buf, sizeof(buf), 0), SyscallSucceedsWithValue(0));
}

TEST(UnixSocketTest, DgramAddressing) {
  const std::string name = Abstract("dgram");
  FileDescriptor r(socket(AF_UNIX, SOCK_DGRAM, 0));
  socklen_t len;
  sockaddr_un a = Addr(name, &len);
  ASSERT_THAT(bind(r.get(), reinterpret_cast<sockaddr*>(&a), len),
              SyscallSucceeds());
  FileDescriptor s(socket(AF_UNIX, SOCK_DGRAM, 0));
  EXPECT_THAT(send(s.get(), "x", 1, 0), SyscallFailsWithErrno(ENOTCONN));
  ASSERT_THAT(sendto(s.get(), "to", 2, 0, reinterpret_cast<sockaddr*>(&a), len),
              SyscallSucceedsWithValue(2));
  char buf[8];
  sockaddr_un from = {};
  socklen_t flen = sizeof(from);
  EXPECT_THAT(recvfrom(r.get(), buf, sizeof(buf), 0,
                       reinterpret_cast<sockaddr*>(&from), &flen),
              SyscallSucceedsWithValue(2));
  EXPECT_EQ(flen, 0);  // The sender has no name.

  // A socket connected elsewhere hears only its peer.
  FileDescriptor third(socket(AF_UNIX, SOCK_DGRAM, 0));
  sockaddr_un a3 = Addr(Abstract("third"), &len);
  ASSERT_THAT(bind(third.get(), reinterpret_cast<sockaddr*>(&a3), len),
              SyscallSucceeds());
  ASSERT_THAT(connect(r.get(), reinterpret_cast<sockaddr*>(&a3), len),
              SyscallSucceeds());
  socklen_t alen;
  a = Addr(name, &alen);
  EXPECT_THAT(sendto(s.get(), "x", 1, 0, reinterpret_cast<sockaddr*>(&a), alen),
              SyscallFailsWithErrno(EPERM));
  // Connecting to a socket that then closes: ECONNREFUSED.
  ASSERT_THAT(connect(s.get(), reinterpret_cast<sockaddr*>(&a3), len),
              SyscallSucceeds());
  third.reset();
  EXPECT_THAT(send(s.get(), "x", 1, 0), SyscallFailsWithErrno(ECONNREFUSED));
  EXPECT_THAT(send(s.get(), "x", 1, 0), SyscallFailsWithErrno(ENOTCONN));
}

TEST(UnixSocketTest, DgramMessageTooLong) {
  Pair p = MakePair(SOCK_DGRAM);
  int sndbuf = 0;
  socklen_t len = sizeof(sndbuf);
  ASSERT_THAT(getsockopt(p.a.get(), SOL_SOCKET, SO_SNDBUF, &sndbuf, &len),
              SyscallSucceeds());
  std::vector<char> big(sndbuf + 1);
  EXPECT_THAT(send(p.a.get(), big.data(), big.size(), 0),
              SyscallFailsWithErrno(EMSGSIZE));
}

TEST(UnixSocketTest, WaitallGathersWrites) {
  Pair p = MakePair(SOCK_STREAM);
  std::thread t([&] {
    usleep(50 * 1000);
    EXPECT_THAT(write(p.a.get(), "ab", 2), SyscallSucceedsWithValue(2));
    usleep(50 * 1000);
    EXPECT_THAT(write(p.a.get(), "cd", 2), SyscallSucceedsWithValue(2));
  });
  char buf[4];
  EXPECT_THAT(recv(p.b.get(), buf, 4, MSG_WAITALL), SyscallSucceedsWithValue(4));
  EXPECT_EQ(std::string(buf, 4), "abcd");
  t.join();
}

TEST(UnixSocketTest, StreamFillsUp) {
  Pair p = MakePair(SOCK_STREAM, SOCK_NONBLOCK);
  std::vector<char> chunk(65536, 'z');
  size_t total = 0;
  while (true) {
    ssize_t n = write(p.a.get(), chunk.data(), chunk.size());
    if (n < 0) {
      EXPECT_EQ(errno, EAGAIN);
      break;
    }
    total += n;
    ASSERT_LT(total, 64u << 20);
  }
  EXPECT_GT(total, 0u);
  pollfd pfd = {p.a.get(), POLLOUT, 0};
  EXPECT_THAT(poll(&pfd, 1, 0), SyscallSucceedsWithValue(0));
  int queued = 0;
  ASSERT_THAT(ioctl(p.b.get(), FIONREAD, &queued), SyscallSucceeds());
  EXPECT_EQ(static_cast<size_t>(queued), total);
  // Draining makes room again.
  size_t drained = 0;
  while (drained < total) {
    ssize_t n = read(p.b.get(), chunk.data(), chunk.size());
    ASSERT_GT(n, 0);
    drained += n;
  }
  EXPECT_THAT(poll(&pfd, 1, 0), SyscallSucceedsWithValue(1));
}

TEST(UnixSocketTest, PassFileDescriptors) {
  Pair p = MakePair(SOCK_STREAM);
  int pfds[2];
  ASSERT_THAT(pipe(pfds), SyscallSucceeds());
  FileDescriptor pr(pfds[0]), pw(pfds[1]);

  char data = 'd';
  iovec iov = {&data, 1};
  alignas(cmsghdr) char cbuf[CMSG_SPACE(2 * sizeof(int))] = {};
  msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = cbuf;
  msg.msg_controllen = CMSG_SPACE(2 * sizeof(int));
  cmsghdr* cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(2 * sizeof(int));
  int sent[2] = {pw.get(), pr.get()};
  memcpy(CMSG_DATA(cm), sent, sizeof(sent));
  ASSERT_THAT(sendmsg(p.a.get(), &msg, 0), SyscallSucceedsWithValue(1));
  pw.reset();

  char got = 0;
  iovec riov = {&got, 1};
  alignas(cmsghdr) char rbuf[CMSG_SPACE(2 * sizeof(int))] = {};
  msghdr rmsg = {};
  rmsg.msg_iov = &riov;
  rmsg.msg_iovlen = 1;
  rmsg.msg_control = rbuf;
  rmsg.msg_controllen = sizeof(rbuf);
  ASSERT_THAT(recvmsg(p.b.get(), &rmsg, MSG_CMSG_CLOEXEC),
              SyscallSucceedsWithValue(1));
  // recvmsg reports MSG_CMSG_CLOEXEC back in msg_flags.
  EXPECT_EQ(rmsg.msg_flags, MSG_CMSG_CLOEXEC);
  EXPECT_EQ(rmsg.msg_controllen, CMSG_SPACE(2 * sizeof(int)));
  cmsghdr* rc = CMSG_FIRSTHDR(&rmsg);
  ASSERT_NE(rc, nullptr);
  EXPECT_EQ(rc->cmsg_level, SOL_SOCKET);
  EXPECT_EQ(rc->cmsg_type, SCM_RIGHTS);
  ASSERT_EQ(rc->cmsg_len, CMSG_LEN(2 * sizeof(int)));
  int fds[2];
  memcpy(fds, CMSG_DATA(rc), sizeof(fds));
  FileDescriptor w2(fds[0]), r2(fds[1]);
  EXPECT_EQ(fcntl(w2.get(), F_GETFD), FD_CLOEXEC);
  // The received write end is the same pipe.
  ASSERT_THAT(write(w2.get(), "q", 1), SyscallSucceedsWithValue(1));
  char q;
  EXPECT_THAT(read(pr.get(), &q, 1), SyscallSucceedsWithValue(1));
  EXPECT_EQ(q, 'q');
}

TEST(UnixSocketTest, ControlTruncated) {
  Pair p = MakePair(SOCK_DGRAM);
  char data = 'd';
  iovec iov = {&data, 1};
  alignas(cmsghdr) char cbuf[CMSG_SPACE(2 * sizeof(int))] = {};
  msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = cbuf;
  msg.msg_controllen = sizeof(cbuf);
  cmsghdr* cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(2 * sizeof(int));
  int sent[2] = {0, 0};
  memcpy(CMSG_DATA(cm), sent, sizeof(sent));
  ASSERT_THAT(sendmsg(p.a.get(), &msg, 0), SyscallSucceedsWithValue(1));

  // Room for one descriptor only.
  alignas(cmsghdr) char rbuf[CMSG_SPACE(sizeof(int))] = {};
  msghdr rmsg = {};
  rmsg.msg_iov = &iov;
  rmsg.msg_iovlen = 1;
  rmsg.msg_control = rbuf;
  rmsg.msg_controllen = CMSG_LEN(sizeof(int));
  ASSERT_THAT(recvmsg(p.b.get(), &rmsg, 0), SyscallSucceedsWithValue(1));
  EXPECT_EQ(rmsg.msg_flags & MSG_CTRUNC, MSG_CTRUNC);
  cmsghdr* rc = CMSG_FIRSTHDR(&rmsg);
  ASSERT_NE(rc, nullptr);
  EXPECT_EQ(rc->cmsg_len, CMSG_LEN(sizeof(int)));
  int fd;
  memcpy(&fd, CMSG_DATA(rc), sizeof(fd));
  EXPECT_THAT(close(fd), SyscallSucceeds());

  // Bad descriptors and malformed headers are refused.
  sent[0] = -1;
  memcpy(CMSG_DATA(cm), sent, sizeof(sent));
  EXPECT_THAT(sendmsg(p.a.get(), &msg, 0), SyscallFailsWithErrno(EBADF));
  cm->cmsg_len = 4;
  EXPECT_THAT(sendmsg(p.a.get(), &msg, 0), SyscallFailsWithErrno(EINVAL));
}

TEST(UnixSocketTest, Credentials) {
  Pair p = MakePair(SOCK_STREAM);
  ucred peer = {};
  socklen_t len = sizeof(peer);
  ASSERT_THAT(getsockopt(p.a.get(), SOL_SOCKET, SO_PEERCRED, &peer, &len),
              SyscallSucceeds());
  EXPECT_EQ(len, sizeof(peer));
  EXPECT_EQ(peer.pid, getpid());
  EXPECT_EQ(peer.uid, geteuid());
  EXPECT_EQ(peer.gid, getegid());

  int on = 1;
  ASSERT_THAT(setsockopt(p.b.get(), SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)),
              SyscallSucceeds());
  ASSERT_THAT(write(p.a.get(), "c", 1), SyscallSucceedsWithValue(1));
  char c;
  iovec iov = {&c, 1};
  alignas(cmsghdr) char rbuf[CMSG_SPACE(sizeof(ucred))] = {};
  msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = rbuf;
  msg.msg_controllen = sizeof(rbuf);
  ASSERT_THAT(recvmsg(p.b.get(), &msg, 0), SyscallSucceedsWithValue(1));
  cmsghdr* cm = CMSG_FIRSTHDR(&msg);
  ASSERT_NE(cm, nullptr);
  EXPECT_EQ(cm->cmsg_type, SCM_CREDENTIALS);
  ASSERT_EQ(cm->cmsg_len, CMSG_LEN(sizeof(ucred)));
  ucred got;
  memcpy(&got, CMSG_DATA(cm), sizeof(got));
  EXPECT_EQ(got.pid, getpid());
  EXPECT_EQ(got.uid, getuid());
  EXPECT_EQ(got.gid, getgid());
}

TEST(UnixSocketTest, OptionsRoundTrip) {
  FileDescriptor s(socket(AF_UNIX, SOCK_STREAM, 0));
  int v = 10000;
  ASSERT_THAT(setsockopt(s.get(), SOL_SOCKET, SO_SNDBUF, &v, sizeof(v)),
              SyscallSucceeds());
  int got = 0;
  socklen_t len = sizeof(got);
  ASSERT_THAT(getsockopt(s.get(), SOL_SOCKET, SO_SNDBUF, &got, &len),
              SyscallSucceeds());
  EXPECT_EQ(got, 20000);
  v = 1;
  ASSERT_THAT(setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &v, sizeof(v)),
              SyscallSucceeds());
  ASSERT_THAT(getsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &got, &len),
              SyscallSucceeds());
  EXPECT_EQ(got, 1);
  linger lg = {1, 5};
  ASSERT_THAT(setsockopt(s.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)),
              SyscallSucceeds());
  linger lgot = {};
  len = sizeof(lgot);
  ASSERT_THAT(getsockopt(s.get(), SOL_SOCKET, SO_LINGER, &lgot, &len),
              SyscallSucceeds());
  EXPECT_EQ(lgot.l_onoff, 1);
  EXPECT_EQ(lgot.l_linger, 5);
  EXPECT_THAT(setsockopt(s.get(), SOL_SOCKET, SO_LINGER, &lg, 4),
              SyscallFailsWithErrno(EINVAL));
  timeval tv = {2, 0};
  ASSERT_THAT(setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)),
              SyscallSucceeds());
  timeval tgot = {};
  len = sizeof(tgot);
  ASSERT_THAT(getsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &tgot, &len),
              SyscallSucceeds());
  EXPECT_EQ(tgot.tv_sec, 2);
  tv.tv_usec = 1000000;
  EXPECT_THAT(setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)),
              SyscallFailsWithErrno(EDOM));
  EXPECT_THAT(setsockopt(s.get(), SOL_SOCKET, SO_SNDBUF, &v, 2),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(getsockopt(s.get(), SOL_SOCKET, 9999, &got, &len),
              SyscallFailsWithErrno(ENOPROTOOPT));
  len = sizeof(got);
  EXPECT_THAT(getsockopt(s.get(), SOL_SOCKET, SO_ERROR, &got, &len),
              SyscallSucceeds());
  EXPECT_EQ(got, 0);
  // A short optlen gets a cut value.
  len = 1;
  ASSERT_THAT(getsockopt(s.get(), SOL_SOCKET, SO_TYPE, &got, &len),
              SyscallSucceeds());
  EXPECT_EQ(len, 1u);
}

TEST(UnixSocketTest, ReceiveTimeout) {
  Pair p = MakePair(SOCK_STREAM);
  timeval tv = {0, 50000};
  ASSERT_THAT(setsockopt(p.b.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)),
              SyscallSucceeds());
  char c;
  EXPECT_THAT(read(p.b.get(), &c, 1), SyscallFailsWithErrno(EAGAIN));
}

std::atomic<int> g_signals{0};
void CountSignal(int) { g_signals++; }

TEST(UnixSocketTest, SignalInterruptsReceive) {
  Pair p = MakePair(SOCK_STREAM);
  struct sigaction sa = {};
  sa.sa_handler = CountSignal;
  // SA_RESTART restarts a socket wait without a timeout...
  sa.sa_flags = SA_RESTART;
  ScopedSigaction act(SIGUSR1, sa);
  pid_t tid = gettid();
  std::thread t([&] {
    usleep(100 * 1000);
    syscall(SYS_tgkill, getpid(), tid, SIGUSR1);
    usleep(100 * 1000);
    EXPECT_THAT(write(p.a.get(), "x", 1), SyscallSucceedsWithValue(1));
  });
  char c;
  EXPECT_THAT(read(p.b.get(), &c, 1), SyscallSucceedsWithValue(1));
  t.join();
  EXPECT_EQ(g_signals.load(), 1);

  // ...but one with SO_RCVTIMEO fails with EINTR.
  timeval tv = {10, 0};
  ASSERT_THAT(setsockopt(p.b.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)),
              SyscallSucceeds());
  std::thread t2([&] {
    usleep(100 * 1000);
    syscall(SYS_tgkill, getpid(), tid, SIGUSR1);
  });
  EXPECT_THAT(read(p.b.get(), &c, 1), SyscallFailsWithErrno(EINTR));
  t2.join();
}

TEST(UnixSocketTest, EpollReadiness) {
  Pair p = MakePair(SOCK_STREAM);
  FileDescriptor ep(epoll_create1(EPOLL_CLOEXEC));
  epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.fd = p.b.get();
  ASSERT_THAT(epoll_ctl(ep.get(), EPOLL_CTL_ADD, p.b.get(), &ev),
              SyscallSucceeds());
  epoll_event out;
  EXPECT_THAT(epoll_wait(ep.get(), &out, 1, 0), SyscallSucceedsWithValue(0));
  std::thread t([&] {
    usleep(50 * 1000);
    EXPECT_THAT(write(p.a.get(), "x", 1), SyscallSucceedsWithValue(1));
  });
  EXPECT_THAT(epoll_wait(ep.get(), &out, 1, 5000), SyscallSucceedsWithValue(1));
  EXPECT_EQ(out.data.fd, p.b.get());
  t.join();
}

TEST(UnixSocketTest, ListenerPollsReadableWithPendingConnection) {
  const std::string name = Abstract("pollacc");
  FileDescriptor l = Listener(SOCK_STREAM, name);
  pollfd pfd = {l.get(), POLLIN | POLLOUT, 0};
  EXPECT_THAT(poll(&pfd, 1, 0), SyscallSucceedsWithValue(0));
  FileDescriptor c(socket(AF_UNIX, SOCK_STREAM, 0));
  ASSERT_THAT(Connect(c.get(), name), SyscallSucceeds());
  ASSERT_THAT(poll(&pfd, 1, 0), SyscallSucceedsWithValue(1));
  EXPECT_EQ(pfd.revents, POLLIN);
}

TEST(UnixSocketTest, MultipleMessages) {
  Pair p = MakePair(SOCK_DGRAM);
  char b1[] = "one", b2[] = "three";
  iovec iov1 = {b1, 3}, iov2 = {b2, 5};
  mmsghdr out[2] = {};
  out[0].msg_hdr.msg_iov = &iov1;
  out[0].msg_hdr.msg_iovlen = 1;
  out[1].msg_hdr.msg_iov = &iov2;
  out[1].msg_hdr.msg_iovlen = 1;
  ASSERT_THAT(sendmmsg(p.a.get(), out, 2, 0), SyscallSucceedsWithValue(2));
  EXPECT_EQ(out[0].msg_len, 3u);
  EXPECT_EQ(out[1].msg_len, 5u);
  char r1[8], r2[8], r3[8];
  iovec riov[3] = {{r1, 8}, {r2, 8}, {r3, 8}};
  mmsghdr in[3] = {};
  for (int i = 0; i < 3; i++) {
    in[i].msg_hdr.msg_iov = &riov[i];
    in[i].msg_hdr.msg_iovlen = 1;
  }
  ASSERT_THAT(recvmmsg(p.b.get(), in, 3, MSG_WAITFORONE, nullptr),
              SyscallSucceedsWithValue(2));
  EXPECT_EQ(in[0].msg_len, 3u);
  EXPECT_EQ(in[1].msg_len, 5u);
  EXPECT_EQ(std::string(r2, 5), "three");
}

TEST(UnixSocketTest, StreamPeekDoesNotConsume) {
  Pair p = MakePair(SOCK_STREAM);
  ASSERT_THAT(write(p.a.get(), "ab", 2), SyscallSucceedsWithValue(2));
  ASSERT_THAT(write(p.a.get(), "cd", 2), SyscallSucceedsWithValue(2));
  char buf[8] = {};
  EXPECT_THAT(recv(p.b.get(), buf, sizeof(buf), MSG_PEEK),
              SyscallSucceedsWithValue(4));
  EXPECT_EQ(std::string(buf, 4), "abcd");
  EXPECT_THAT(recv(p.b.get(), buf, 3, 0), SyscallSucceedsWithValue(3));
  EXPECT_THAT(recv(p.b.get(), buf, sizeof(buf), 0), SyscallSucceedsWithValue(1));
  EXPECT_EQ(buf[0], 'd');
}

TEST(UnixSocketTest, ReadvWritev) {
  Pair p = MakePair(SOCK_SEQPACKET);
  char a[] = "ab", b[] = "cde";
  iovec iov[2] = {{a, 2}, {b, 3}};
  ASSERT_THAT(writev(p.a.get(), iov, 2), SyscallSucceedsWithValue(5));
  char x[3], y[3];
  iovec riov[2] = {{x, 3}, {y, 3}};
  ASSERT_THAT(readv(p.b.get(), riov, 2), SyscallSucceedsWithValue(5));
  EXPECT_EQ(std::string(x, 3) + std::string(y, 2), "abcde");
}

TEST(UnixSocketTest, PasscredAutobindsTheSender) {
  const std::string name = Abstract("passcred");
  FileDescriptor r(socket(AF_UNIX, SOCK_DGRAM, 0));
  socklen_t len;
  sockaddr_un a = Addr(name, &len);
  ASSERT_THAT(bind(r.get(), reinterpret_cast<sockaddr*>(&a), len),
              SyscallSucceeds());
  FileDescriptor s(socket(AF_UNIX, SOCK_DGRAM, 0));
  int on = 1;
  ASSERT_THAT(setsockopt(s.get(), SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)),
              SyscallSucceeds());
  ASSERT_THAT(sendto(s.get(), "x", 1, 0, reinterpret_cast<sockaddr*>(&a), len),
              SyscallSucceedsWithValue(1));
  char c;
  sockaddr_un from = {};
  socklen_t flen = sizeof(from);
  ASSERT_THAT(recvfrom(r.get(), &c, 1, 0, reinterpret_cast<sockaddr*>(&from),
                       &flen),
              SyscallSucceedsWithValue(1));
  EXPECT_EQ(flen, offsetof(sockaddr_un, sun_path) + 6);
  EXPECT_EQ(from.sun_path[0], 0);
}

TEST(UnixSocketTest, MessageHeaderLimits) {
  Pair p = MakePair(SOCK_DGRAM);
  std::vector<iovec> iov(1025, iovec{nullptr, 0});
  msghdr msg = {};
  msg.msg_iov = iov.data();
  msg.msg_iovlen = iov.size();
  EXPECT_THAT(sendmsg(p.a.get(), &msg, 0), SyscallFailsWithErrno(EMSGSIZE));
  EXPECT_THAT(recvmsg(p.a.get(), &msg, 0), SyscallFailsWithErrno(EMSGSIZE));
  // Datagram sockets have no out-of-band data.
  EXPECT_THAT(send(p.a.get(), "x", 1, MSG_OOB),
              SyscallFailsWithErrno(EOPNOTSUPP));
}

TEST(UnixSocketTest, BlockedWriterWakesAsReaderDrains) {
  Pair p = MakePair(SOCK_STREAM);
  constexpr size_t kTotal = 8 << 20;
  std::thread writer([&] {
    std::vector<char> chunk(1 << 20, 'w');
    for (size_t sent = 0; sent < kTotal; sent += chunk.size()) {
      ASSERT_THAT(write(p.a.get(), chunk.data(), chunk.size()),
                  SyscallSucceedsWithValue(chunk.size()));
    }
  });
  std::vector<char> buf(1 << 16);
  size_t got = 0;
  while (got < kTotal) {
    ssize_t n = read(p.b.get(), buf.data(), buf.size());
    ASSERT_GT(n, 0);
    got += n;
  }
  writer.join();
}

TEST(UnixSocketTest, EpollSeesRoomAfterDrain) {
  Pair p = MakePair(SOCK_STREAM, SOCK_NONBLOCK);
  std::vector<char> chunk(65536, 'z');
  while (write(p.a.get(), chunk.data(), chunk.size()) > 0) {
  }
  ASSERT_EQ(errno, EAGAIN);
  FileDescriptor ep(epoll_create1(EPOLL_CLOEXEC));
  epoll_event ev = {};
  ev.events = EPOLLOUT;
  ASSERT_THAT(epoll_ctl(ep.get(), EPOLL_CTL_ADD, p.a.get(), &ev),
              SyscallSucceeds());
  epoll_event out;
  EXPECT_THAT(epoll_wait(ep.get(), &out, 1, 0), SyscallSucceedsWithValue(0));
  std::thread drain([&] {
    usleep(50 * 1000);
    std::vector<char> buf(1 << 20);
    while (read(p.b.get(), buf.data(), buf.size()) > 0) {
    }
  });
  EXPECT_THAT(epoll_wait(ep.get(), &out, 1, 5000), SyscallSucceedsWithValue(1));
  drain.join();
}

TEST(UnixSocketTest, ShutdownReadEndsPeerWrites) {
  Pair p = MakePair(SOCK_STREAM);
  ASSERT_THAT(write(p.b.get(), "q", 1), SyscallSucceedsWithValue(1));
  ASSERT_THAT(shutdown(p.a.get(), SHUT_RD), SyscallSucceeds());
  // The peer may no longer write; what was queued is still readable.
  EXPECT_THAT(send(p.b.get(), "x", 1, MSG_NOSIGNAL),
              SyscallFailsWithErrno(EPIPE));
  char c;
  EXPECT_THAT(read(p.a.get(), &c, 1), SyscallSucceedsWithValue(1));
  EXPECT_THAT(read(p.a.get(), &c, 1), SyscallSucceedsWithValue(0));
  pollfd pfd = {p.b.get(), POLLOUT | POLLRDHUP, 0};
  ASSERT_THAT(poll(&pfd, 1, 0), SyscallSucceedsWithValue(1));
  EXPECT_EQ(pfd.revents & POLLRDHUP, 0);
}

TEST(UnixSocketTest, DgramShutdownAndDisconnect) {
  Pair p = MakePair(SOCK_DGRAM);
  ASSERT_THAT(shutdown(p.b.get(), SHUT_RD), SyscallSucceeds());
  char c;
  EXPECT_THAT(recv(p.b.get(), &c, 1, 0), SyscallSucceedsWithValue(0));
  EXPECT_THAT(send(p.a.get(), "x", 1, 0), SyscallFailsWithErrno(EPIPE));
  // AF_UNSPEC breaks the association.
  sockaddr un = {};
  un.sa_family = AF_UNSPEC;
  ASSERT_THAT(connect(p.a.get(), &un, sizeof(un)), SyscallSucceeds());
  sockaddr_un got = {};
  socklen_t len = sizeof(got);
  EXPECT_THAT(getpeername(p.a.get(), reinterpret_cast<sockaddr*>(&got), &len),
              SyscallFailsWithErrno(ENOTCONN));
  EXPECT_THAT(send(p.a.get(), "x", 1, 0), SyscallFailsWithErrno(ENOTCONN));
}

TEST(UnixSocketTest, SeqpacketPeerClose) {
  Pair p = MakePair(SOCK_SEQPACKET);
  p.b.reset();
  // Unlike a stream, a seqpacket socket raises no SIGPIPE.
  ScopedSignalMask mask(SIG_BLOCK, SignalSet({SIGPIPE}));
  EXPECT_THAT(send(p.a.get(), "x", 1, 0), SyscallFailsWithErrno(EPIPE));
  sigset_t pending;
  sigpending(&pending);
  EXPECT_FALSE(sigismember(&pending, SIGPIPE));
  char c;
  EXPECT_THAT(recv(p.a.get(), &c, 1, 0), SyscallSucceedsWithValue(0));
  pollfd pfd = {p.a.get(), POLLIN, 0};
  ASSERT_THAT(poll(&pfd, 1, 0), SyscallSucceedsWithValue(1));
  EXPECT_EQ(pfd.revents & (POLLIN | POLLHUP), POLLIN | POLLHUP);
}

TEST(UnixSocketTest, CredentialsDoNotGlueWriters) {
  // With SO_PASSCRED, a stream read never joins data sent with different
  // credentials; without it, it does.
  Pair p = MakePair(SOCK_STREAM);
  int on = 1;
  ASSERT_THAT(setsockopt(p.b.get(), SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)),
              SyscallSucceeds());
  ASSERT_THAT(write(p.a.get(), "ab", 2), SyscallSucceedsWithValue(2));
  ASSERT_THAT(write(p.a.get(), "cd", 2), SyscallSucceedsWithValue(2));
  char buf[8];
  // Same writer: glued.
  EXPECT_THAT(read(p.b.get(), buf, sizeof(buf)), SyscallSucceedsWithValue(4));
}

TEST(UnixSocketTest, ProcNetUnixListsAbstractNames) {
  const std::string name = Abstract("procnet");
  FileDescriptor l = Listener(SOCK_STREAM, name);
  std::string table = ReadFile("/proc/net/unix");
  EXPECT_EQ(table.rfind("Num       RefCount Protocol Flags    Type St Inode Path",
                        0),
            0u);
  EXPECT_NE(table.find(" 00010000 0001 01 "), std::string::npos);
  EXPECT_NE(table.find("@" + name.substr(1) + "\n"), std::string::npos);
}

TEST(UnixSocketTest, ExplicitCredentials) {
  Pair p = MakePair(SOCK_DGRAM);
  int on = 1;
  ASSERT_THAT(setsockopt(p.b.get(), SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)),
              SyscallSucceeds());
  char c = 'c';
  iovec iov = {&c, 1};
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(ucred))] = {};
  msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = cbuf;
  msg.msg_controllen = sizeof(cbuf);
  cmsghdr* cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_CREDENTIALS;
  cm->cmsg_len = CMSG_LEN(sizeof(ucred));
  ucred mine = {getpid(), getuid(), getgid()};
  memcpy(CMSG_DATA(cm), &mine, sizeof(mine));
  ASSERT_THAT(sendmsg(p.a.get(), &msg, 0), SyscallSucceedsWithValue(1));

  alignas(cmsghdr) char rbuf[CMSG_SPACE(sizeof(ucred))] = {};
  msghdr rmsg = {};
  rmsg.msg_iov = &iov;
  rmsg.msg_iovlen = 1;
  rmsg.msg_control = rbuf;
  rmsg.msg_controllen = sizeof(rbuf);
  ASSERT_THAT(recvmsg(p.b.get(), &rmsg, 0), SyscallSucceedsWithValue(1));
  cmsghdr* rc = CMSG_FIRSTHDR(&rmsg);
  ASSERT_NE(rc, nullptr);
  ASSERT_EQ(rc->cmsg_type, SCM_CREDENTIALS);
  ucred got;
  memcpy(&got, CMSG_DATA(rc), sizeof(got));
  EXPECT_EQ(got.pid, mine.pid);
  EXPECT_EQ(got.uid, mine.uid);

  // A credentials message of the wrong size is refused.
  cm->cmsg_len = CMSG_LEN(sizeof(ucred) - 4);
  EXPECT_THAT(sendmsg(p.a.get(), &msg, 0), SyscallFailsWithErrno(EINVAL));
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
