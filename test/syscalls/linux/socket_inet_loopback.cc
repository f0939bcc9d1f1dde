// TCP and UDP over loopback for AF_INET and AF_INET6: binding and ports,
// connections, addresses, data, options and errors (net/ipv4, net/ipv6).
// The sandbox runs with --network=none, so only loopback exists; cases about
// other addresses run natively in a fresh network namespace, which has the
// same view.

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/file_descriptor.h"
#include "test/util/fs_util.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

sockaddr_in V4(const char* ip, uint16_t port) {
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

sockaddr_in6 V6(const char* ip, uint16_t port) {
  sockaddr_in6 a = {};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(port);
  inet_pton(AF_INET6, ip, &a.sin6_addr);
  return a;
}

template <typename T>
sockaddr* SA(T* a) {
  return reinterpret_cast<sockaddr*>(a);
}

uint16_t PortOf(int fd) {
  sockaddr_storage ss = {};
  socklen_t len = sizeof(ss);
  EXPECT_THAT(getsockname(fd, SA(&ss), &len), SyscallSucceeds());
  if (ss.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  }
  return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
}

FileDescriptor TcpListener(int family = AF_INET, const char* ip = "127.0.0.1",
                           int backlog = 16) {
  FileDescriptor s(socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_TRUE(s.valid());
  if (family == AF_INET) {
    sockaddr_in a = V4(ip, 0);
    EXPECT_THAT(bind(s.get(), SA(&a), sizeof(a)), SyscallSucceeds());
  } else {
    sockaddr_in6 a = V6(ip, 0);
    EXPECT_THAT(bind(s.get(), SA(&a), sizeof(a)), SyscallSucceeds());
  }
  EXPECT_THAT(listen(s.get(), backlog), SyscallSucceeds());
  return s;
}

FileDescriptor TcpConnect(uint16_t port, int flags = 0) {
  FileDescriptor c(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | flags, 0));
  sockaddr_in a = V4("127.0.0.1", port);
  int r = connect(c.get(), SA(&a), sizeof(a));
  if (flags & SOCK_NONBLOCK) {
    EXPECT_THAT(r, SyscallFailsWithErrno(EINPROGRESS));
  } else {
    EXPECT_THAT(r, SyscallSucceeds());
  }
  return c;
}

TEST(InetLoopbackTest, CreationErrors) {
  EXPECT_THAT(socket(AF_INET, SOCK_STREAM, IPPROTO_UDP),
              SyscallFailsWithErrno(EPROTONOSUPPORT));
  EXPECT_THAT(socket(AF_INET6, SOCK_DGRAM, IPPROTO_TCP),
              SyscallFailsWithErrno(EPROTONOSUPPORT));
  FileDescriptor s(socket(AF_INET, SOCK_STREAM, 0));
  int proto = 0;
  socklen_t len = sizeof(proto);
  ASSERT_THAT(getsockopt(s.get(), SOL_SOCKET, SO_PROTOCOL, &proto, &len),
              SyscallSucceeds());
  EXPECT_EQ(proto, IPPROTO_TCP);
}

TEST(InetLoopbackTest, UnboundNames) {
  FileDescriptor s(socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in a = {};
  socklen_t len = sizeof(a);
  ASSERT_THAT(getsockname(s.get(), SA(&a), &len), SyscallSucceeds());
  EXPECT_EQ(len, sizeof(a));
  EXPECT_EQ(a.sin_family, AF_INET);
  EXPECT_EQ(a.sin_port, 0);
  EXPECT_EQ(a.sin_addr.s_addr, htonl(INADDR_ANY));
  len = sizeof(a);
  EXPECT_THAT(getpeername(s.get(), SA(&a), &len),
              SyscallFailsWithErrno(ENOTCONN));
  FileDescriptor s6(socket(AF_INET6, SOCK_DGRAM, 0));
  sockaddr_in6 a6 = {};
  len = sizeof(a6);
  ASSERT_THAT(getsockname(s6.get(), SA(&a6), &len), SyscallSucceeds());
  EXPECT_EQ(len, sizeof(a6));
  EXPECT_EQ(a6.sin6_family, AF_INET6);
}

TEST(InetLoopbackTest, BindErrors) {
  FileDescriptor s(socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in a = V4("127.0.0.1", 0);
  EXPECT_THAT(bind(s.get(), SA(&a), 8), SyscallFailsWithErrno(EINVAL));
  sockaddr_in6 a6 = V6("::1", 0);
  EXPECT_THAT(bind(s.get(), SA(&a6), sizeof(a6)),
              SyscallFailsWithErrno(EAFNOSUPPORT));
  // An address no interface has.
  sockaddr_in far = V4("10.254.254.254", 0);
  EXPECT_THAT(bind(s.get(), SA(&far), sizeof(far)),
              SyscallFailsWithErrno(EADDRNOTAVAIL));
  ASSERT_THAT(bind(s.get(), SA(&a), sizeof(a)), SyscallSucceeds());
  EXPECT_THAT(bind(s.get(), SA(&a), sizeof(a)), SyscallFailsWithErrno(EINVAL));
  FileDescriptor s6(socket(AF_INET6, SOCK_STREAM, 0));
  EXPECT_THAT(bind(s6.get(), SA(&a6), 8), SyscallFailsWithErrno(EINVAL));
}

TEST(InetLoopbackTest, ConnectAcceptAndNames) {
  FileDescriptor l = TcpListener();
  uint16_t port = PortOf(l.get());
  EXPECT_NE(port, 0);
  FileDescriptor c = TcpConnect(port);
  sockaddr_in peer = {};
  socklen_t plen = sizeof(peer);
  FileDescriptor s(accept4(l.get(), SA(&peer), &plen, SOCK_CLOEXEC));
  ASSERT_TRUE(s.valid()) << strerror(errno);
  EXPECT_EQ(plen, sizeof(peer));
  EXPECT_EQ(peer.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
  // The client got an ephemeral port, which the server sees.
  EXPECT_EQ(ntohs(peer.sin_port), PortOf(c.get()));
  EXPECT_GE(PortOf(c.get()), 1024);
  sockaddr_in got = {};
  socklen_t glen = sizeof(got);
  ASSERT_THAT(getpeername(c.get(), SA(&got), &glen), SyscallSucceeds());
  EXPECT_EQ(ntohs(got.sin_port), port);
  EXPECT_EQ(PortOf(s.get()), port);

  ASSERT_THAT(write(c.get(), "ping", 4), SyscallSucceedsWithValue(4));
  char buf[8] = {};
  EXPECT_THAT(read(s.get(), buf, sizeof(buf)), SyscallSucceedsWithValue(4));
  EXPECT_STREQ(buf, "ping");
  int n = -1;
  ASSERT_THAT(write(s.get(), "pong!", 5), SyscallSucceedsWithValue(5));
  // Give the loopback a moment natively.
  pollfd pfd = {c.get(), POLLIN, 0};
  ASSERT_THAT(poll(&pfd, 1, 5000), SyscallSucceedsWithValue(1));
  ASSERT_THAT(ioctl(c.get(), FIONREAD, &n), SyscallSucceeds());
  EXPECT_EQ(n, 5);
  // recvfrom on TCP reports no address.
  sockaddr_in from = {};
  socklen_t flen = sizeof(from);
  EXPECT_THAT(recvfrom(c.get(), buf, sizeof(buf), MSG_PEEK, SA(&from), &flen),
              SyscallSucceedsWithValue(5));
  EXPECT_EQ(flen, 0);
}

TEST(InetLoopbackTest, ListenWithoutBindPicksAPort) {
  FileDescriptor s(socket(AF_INET, SOCK_STREAM, 0));
  ASSERT_THAT(listen(s.get(), 1), SyscallSucceeds());
  EXPECT_NE(PortOf(s.get()), 0);
  int on = 0;
  socklen_t len = sizeof(on);
  ASSERT_THAT(getsockopt(s.get(), SOL_SOCKET, SO_ACCEPTCONN, &on, &len),
              SyscallSucceeds());
  EXPECT_EQ(on, 1);
}

TEST(InetLoopbackTest, AddressInUseAndReuse) {
  FileDescriptor l = TcpListener();
  uint16_t port = PortOf(l.get());
  sockaddr_in a = V4("127.0.0.1", port);
  FileDescriptor s(socket(AF_INET, SOCK_STREAM, 0));
  EXPECT_THAT(bind(s.get(), SA(&a), sizeof(a)),
              SyscallFailsWithErrno(EADDRINUSE));
  // The wildcard address overlaps too.
  sockaddr_in any = V4("0.0.0.0", port);
  EXPECT_THAT(bind(s.get(), SA(&any), sizeof(any)),
              SyscallFailsWithErrno(EADDRINUSE));
  // SO_REUSEADDR on both does not share a port with a listener...
  int on = 1;
  ASSERT_THAT(setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)),
              SyscallSucceeds());
  ASSERT_THAT(setsockopt(l.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)),
              SyscallSucceeds());
  EXPECT_THAT(bind(s.get(), SA(&a), sizeof(a)),
              SyscallFailsWithErrno(EADDRINUSE));
  // ...but does once it is gone, even while its connections live on.
  FileDescriptor c = TcpConnect(port);
  FileDescriptor acc(accept(l.get(), nullptr, nullptr));
  ASSERT_TRUE(acc.valid());
  l.reset();
  EXPECT_THAT(bind(s.get(), SA(&a), sizeof(a)), SyscallSucceeds());
  EXPECT_THAT(listen(s.get(), 1), SyscallSucceeds());
}

TEST(InetLoopbackTest, ReusePortSharesAListeningPort) {
  FileDescriptor a(socket(AF_INET, SOCK_STREAM, 0));
  FileDescriptor b(socket(AF_INET, SOCK_STREAM, 0));
  int on = 1;
  ASSERT_THAT(setsockopt(a.get(), SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)),
              SyscallSucceeds());
  ASSERT_THAT(setsockopt(b.get(), SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)),
              SyscallSucceeds());
  sockaddr_in addr = V4("127.0.0.1", 0);
  ASSERT_THAT(bind(a.get(), SA(&addr), sizeof(addr)), SyscallSucceeds());
  ASSERT_THAT(listen(a.get(), 1), SyscallSucceeds());
  addr.sin_port = htons(PortOf(a.get()));
  ASSERT_THAT(bind(b.get(), SA(&addr), sizeof(addr)), SyscallSucceeds());
  EXPECT_THAT(listen(b.get(), 1), SyscallSucceeds());
}

TEST(InetLoopbackTest, ConnectionRefused) {
  // A port that was just free.
  FileDescriptor l = TcpListener();
  uint16_t port = PortOf(l.get());
  l.reset();
  FileDescriptor c(socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in a = V4("127.0.0.1", port);
  EXPECT_THAT(connect(c.get(), SA(&a), sizeof(a)),
              SyscallFailsWithErrno(ECONNREFUSED));

  FileDescriptor nb(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
  int r = connect(nb.get(), SA(&a), sizeof(a));
  ASSERT_THAT(r, SyscallFailsWithErrno(EINPROGRESS));
  pollfd pfd = {nb.get(), POLLOUT, 0};
  ASSERT_THAT(poll(&pfd, 1, 5000), SyscallSucceedsWithValue(1));
  EXPECT_EQ(pfd.revents & (POLLERR | POLLHUP), POLLERR | POLLHUP);
  int err = 0;
  socklen_t len = sizeof(err);
  ASSERT_THAT(getsockopt(nb.get(), SOL_SOCKET, SO_ERROR, &err, &len),
              SyscallSucceeds());
  EXPECT_EQ(err, ECONNREFUSED);
}

TEST(InetLoopbackTest, NonblockingConnectCompletes) {
  FileDescriptor l = TcpListener();
  FileDescriptor c = TcpConnect(PortOf(l.get()), SOCK_NONBLOCK);
  pollfd pfd = {c.get(), POLLOUT, 0};
  ASSERT_THAT(poll(&pfd, 1, 5000), SyscallSucceedsWithValue(1));
  EXPECT_EQ(pfd.revents, POLLOUT);
  int err = -1;
  socklen_t len = sizeof(err);
  ASSERT_THAT(getsockopt(c.get(), SOL_SOCKET, SO_ERROR, &err, &len),
              SyscallSucceeds());
  EXPECT_EQ(err, 0);
  sockaddr_in a = V4("127.0.0.1", PortOf(l.get()));
  EXPECT_THAT(connect(c.get(), SA(&a), sizeof(a)), SyscallSucceeds());
  EXPECT_THAT(connect(c.get(), SA(&a), sizeof(a)),
              SyscallFailsWithErrno(EISCONN));
}

TEST(InetLoopbackTest, FullBacklogDefersConnection) {
  FileDescriptor l = TcpListener(AF_INET, "127.0.0.1", 0);
  uint16_t port = PortOf(l.get());
  // The queue holds backlog + 1 connections.
  FileDescriptor c1 = TcpConnect(port);
  FileDescriptor c2 = TcpConnect(port, SOCK_NONBLOCK);
  pollfd pfd = {c2.get(), POLLOUT, 0};
  EXPECT_THAT(poll(&pfd, 1, 100), SyscallSucceedsWithValue(0));
  FileDescriptor s1(accept(l.get(), nullptr, nullptr));
  ASSERT_TRUE(s1.valid());
  // Natively the client's retransmitted SYN gets in after about a second.
  ASSERT_THAT(poll(&pfd, 1, 10000), SyscallSucceedsWithValue(1));
  EXPECT_EQ(pfd.revents, POLLOUT);
  FileDescriptor s2(accept(l.get(), nullptr, nullptr));
  EXPECT_TRUE(s2.valid());
}

TEST(InetLoopbackTest, ConnectTimeoutReportsInProgress) {
  FileDescriptor l = TcpListener(AF_INET, "127.0.0.1", 0);
  uint16_t port = PortOf(l.get());
  FileDescriptor c1 = TcpConnect(port);
  FileDescriptor c2(socket(AF_INET, SOCK_STREAM, 0));
  timeval tv = {0, 100 * 1000};
  ASSERT_THAT(setsockopt(c2.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)),
              SyscallSucceeds());
  sockaddr_in a = V4("127.0.0.1", port);
  EXPECT_THAT(connect(c2.get(), SA(&a), sizeof(a)),
              SyscallFailsWithErrno(EINPROGRESS));
  FileDescriptor s1(accept(l.get(), nullptr, nullptr));
  ASSERT_TRUE(s1.valid());
  pollfd pfd = {c2.get(), POLLOUT, 0};
  ASSERT_THAT(poll(&pfd, 1, 10000), SyscallSucceedsWithValue(1));
  EXPECT_EQ(pfd.revents, POLLOUT);
}

TEST(InetLoopbackTest, AcceptNonblockingAndPoll) {
  FileDescriptor l = TcpListener();
  ASSERT_THAT(fcntl(l.get(), F_SETFL, O_NONBLOCK), SyscallSucceeds());
  EXPECT_THAT(accept(l.get(), nullptr, nullptr), SyscallFailsWithErrno(EAGAIN));
  pollfd pfd = {l.get(), POLLIN, 0};
  EXPECT_THAT(poll(&pfd, 1, 0), SyscallSucceedsWithValue(0));
  FileDescriptor c = TcpConnect(PortOf(l.get()));
  ASSERT_THAT(poll(&pfd, 1, 5000), SyscallSucceedsWithValue(1));
  FileDescriptor s(accept4(l.get(), nullptr, nullptr, SOCK_NONBLOCK));
  ASSERT_TRUE(s.valid());
  EXPECT_EQ(fcntl(s.get(), F_GETFL) & O_NONBLOCK, O_NONBLOCK);
  char ch;
  EXPECT_THAT(read(s.get(), &ch, 1), SyscallFailsWithErrno(EAGAIN));
}

TEST(InetLoopbackTest, ShutdownAndClose) {
  FileDescriptor l = TcpListener();
  FileDescriptor c = TcpConnect(PortOf(l.get()));
  FileDescriptor s(accept(l.get(), nullptr, nullptr));
  ASSERT_THAT(shutdown(c.get(), SHUT_WR), SyscallSucceeds());
  char ch;
  EXPECT_THAT(read(s.get(), &ch, 1), SyscallSucceedsWithValue(0));
  EXPECT_THAT(send(c.get(), "x", 1, MSG_NOSIGNAL),
              SyscallFailsWithErrno(EPIPE));
  ASSERT_THAT(write(s.get(), "y", 1), SyscallSucceedsWithValue(1));
  EXPECT_THAT(read(c.get(), &ch, 1), SyscallSucceedsWithValue(1));
  s.reset();
  EXPECT_THAT(read(c.get(), &ch, 1), SyscallSucceedsWithValue(0));
}

TEST(InetLoopbackTest, WritesToAClosedPeerFail) {
  FileDescriptor l = TcpListener();
  FileDescriptor c = TcpConnect(PortOf(l.get()));
  FileDescriptor s(accept(l.get(), nullptr, nullptr));
  s.reset();
  // Linux takes one write and answers it with a reset; either way writes
  // soon fail.
  int err = 0;
  for (int i = 0; i < 50 && !err; i++) {
    if (send(c.get(), "x", 1, MSG_NOSIGNAL) < 0) err = errno;
    usleep(10 * 1000);
  }
  EXPECT_THAT(err, ::testing::AnyOf(EPIPE, ECONNRESET));
}

TEST(InetLoopbackTest, LingerZeroResets) {
  FileDescriptor l = TcpListener();
  FileDescriptor c = TcpConnect(PortOf(l.get()));
  FileDescriptor s(accept(l.get(), nullptr, nullptr));
  linger lg = {1, 0};
  ASSERT_THAT(setsockopt(s.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)),
              SyscallSucceeds());
  s.reset();
  char ch;
  pollfd pfd = {c.get(), POLLIN, 0};
  ASSERT_THAT(poll(&pfd, 1, 5000), SyscallSucceedsWithValue(1));
  EXPECT_THAT(read(c.get(), &ch, 1), SyscallFailsWithErrno(ECONNRESET));
  EXPECT_THAT(read(c.get(), &ch, 1), SyscallSucceedsWithValue(0));
}

TEST(InetLoopbackTest, ResetIsReportedToTheNextWrite) {
  FileDescriptor l = TcpListener();
  FileDescriptor c = TcpConnect(PortOf(l.get()));
  FileDescriptor s(accept(l.get(), nullptr, nullptr));
  ASSERT_THAT(write(c.get(), "unread", 6), SyscallSucceedsWithValue(6));
  pollfd pfd = {s.get(), POLLIN, 0};
  ASSERT_THAT(poll(&pfd, 1, 5000), SyscallSucceedsWithValue(1));
  s.reset();  // Closes with data unread: a reset.
  pfd = {c.get(), POLLIN, 0};
  ASSERT_THAT(poll(&pfd, 1, 5000), SyscallSucceedsWithValue(1));
  EXPECT_EQ(pfd.revents & (POLLERR | POLLHUP), POLLERR | POLLHUP);
  EXPECT_THAT(send(c.get(), "x", 1, MSG_NOSIGNAL),
              SyscallFailsWithErrno(ECONNRESET));
  EXPECT_THAT(send(c.get(), "x", 1, MSG_NOSIGNAL),
              SyscallFailsWithErrno(EPIPE));
}

TEST(InetLoopbackTest, UnconnectedTcp) {
  FileDescriptor s(socket(AF_INET, SOCK_STREAM, 0));
  char ch;
  EXPECT_THAT(recv(s.get(), &ch, 1, 0), SyscallFailsWithErrno(ENOTCONN));
  EXPECT_THAT(send(s.get(), "x", 1, MSG_NOSIGNAL),
              SyscallFailsWithErrno(EPIPE));
  pollfd pfd = {s.get(), POLLIN | POLLOUT, 0};
  ASSERT_THAT(poll(&pfd, 1, 0), SyscallSucceedsWithValue(1));
  EXPECT_EQ(pfd.revents, POLLOUT | POLLHUP);
  // shutdown fails, yet marks the socket (inet_shutdown wakes pollers).
  EXPECT_THAT(shutdown(s.get(), SHUT_RDWR), SyscallFailsWithErrno(ENOTCONN));
  ASSERT_THAT(poll(&pfd, 1, 0), SyscallSucceedsWithValue(1));
  EXPECT_EQ(pfd.revents, POLLIN | POLLOUT | POLLHUP);
}

TEST(InetLoopbackTest, DualStack) {
  FileDescriptor l = TcpListener(AF_INET6, "::");
  uint16_t port = PortOf(l.get());
  FileDescriptor c = TcpConnect(port);
  sockaddr_in6 peer = {};
  socklen_t len = sizeof(peer);
  FileDescriptor s(accept(l.get(), SA(&peer), &len));
  ASSERT_TRUE(s.valid());
  EXPECT_EQ(len, sizeof(peer));
  EXPECT_EQ(peer.sin6_family, AF_INET6);
  EXPECT_TRUE(IN6_IS_ADDR_V4MAPPED(&peer.sin6_addr));

  FileDescriptor c6(socket(AF_INET6, SOCK_STREAM, 0));
  sockaddr_in6 a6 = V6("::1", port);
  ASSERT_THAT(connect(c6.get(), SA(&a6), sizeof(a6)), SyscallSucceeds());
  FileDescriptor s6(accept(l.get(), SA(&peer), &len));
  ASSERT_TRUE(s6.valid());
  EXPECT_TRUE(IN6_IS_ADDR_LOOPBACK(&peer.sin6_addr));

  // An IPv6-only listener does not hear IPv4 clients.
  FileDescriptor only(socket(AF_INET6, SOCK_STREAM, 0));
  int on = 1;
  ASSERT_THAT(
      setsockopt(only.get(), IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)),
      SyscallSucceeds());
  sockaddr_in6 any = V6("::", 0);
  ASSERT_THAT(bind(only.get(), SA(&any), sizeof(any)), SyscallSucceeds());
  ASSERT_THAT(listen(only.get(), 1), SyscallSucceeds());
  EXPECT_THAT(
      setsockopt(only.get(), IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)),
      SyscallFailsWithErrno(EINVAL));
  FileDescriptor c4(socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in a4 = V4("127.0.0.1", PortOf(only.get()));
  EXPECT_THAT(connect(c4.get(), SA(&a4), sizeof(a4)),
              SyscallFailsWithErrno(ECONNREFUSED));
}

TEST(InetLoopbackTest, WildcardListenerHearsAllLoopbackAddresses) {
  FileDescriptor l = TcpListener(AF_INET, "0.0.0.0");
  FileDescriptor c(socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in a = V4("127.0.0.2", PortOf(l.get()));
  ASSERT_THAT(connect(c.get(), SA(&a), sizeof(a)), SyscallSucceeds());
  FileDescriptor s(accept(l.get(), nullptr, nullptr));
  sockaddr_in local = {};
  socklen_t len = sizeof(local);
  ASSERT_THAT(getsockname(s.get(), SA(&local), &len), SyscallSucceeds());
  EXPECT_EQ(local.sin_addr.s_addr, a.sin_addr.s_addr);
}

TEST(InetLoopbackTest, TcpOptions) {
  FileDescriptor s(socket(AF_INET, SOCK_STREAM, 0));
  int v = 1, got = 0;
  socklen_t len = sizeof(got);
  ASSERT_THAT(setsockopt(s.get(), IPPROTO_TCP, TCP_NODELAY, &v, sizeof(v)),
              SyscallSucceeds());
  ASSERT_THAT(getsockopt(s.get(), IPPROTO_TCP, TCP_NODELAY, &got, &len),
              SyscallSucceeds());
  EXPECT_EQ(got, 1);
  v = 30;
  ASSERT_THAT(setsockopt(s.get(), IPPROTO_TCP, TCP_KEEPIDLE, &v, sizeof(v)),
              SyscallSucceeds());
  ASSERT_THAT(getsockopt(s.get(), IPPROTO_TCP, TCP_KEEPIDLE, &got, &len),
              SyscallSucceeds());
  EXPECT_EQ(got, 30);
  v = 0;
  EXPECT_THAT(setsockopt(s.get(), IPPROTO_TCP, TCP_KEEPIDLE, &v, sizeof(v)),
              SyscallFailsWithErrno(EINVAL));
  v = 1;
  ASSERT_THAT(setsockopt(s.get(), SOL_SOCKET, SO_KEEPALIVE, &v, sizeof(v)),
              SyscallSucceeds());
  ASSERT_THAT(getsockopt(s.get(), IPPROTO_IP, IP_TTL, &got, &len),
              SyscallSucceeds());
  EXPECT_EQ(got, 64);
  EXPECT_THAT(getsockopt(s.get(), IPPROTO_IPV6, IPV6_V6ONLY, &got, &len),
              SyscallFailsWithErrno(EOPNOTSUPP));
  EXPECT_THAT(getsockopt(s.get(), IPPROTO_TCP, 9999, &got, &len),
              SyscallFailsWithErrno(ENOPROTOOPT));

  FileDescriptor l = TcpListener();
  FileDescriptor c = TcpConnect(PortOf(l.get()));
  tcp_info info = {};
  len = sizeof(info);
  ASSERT_THAT(getsockopt(c.get(), IPPROTO_TCP, TCP_INFO, &info, &len),
              SyscallSucceeds());
  EXPECT_EQ(info.tcpi_state, TCP_ESTABLISHED);
}

TEST(InetLoopbackTest, UdpDatagrams) {
  FileDescriptor r(socket(AF_INET, SOCK_DGRAM, 0));
  sockaddr_in a = V4("127.0.0.1", 0);
  ASSERT_THAT(bind(r.get(), SA(&a), sizeof(a)), SyscallSucceeds());
  a.sin_port = htons(PortOf(r.get()));
  FileDescriptor s(socket(AF_INET, SOCK_DGRAM, 0));
  EXPECT_THAT(send(s.get(), "x", 1, 0), SyscallFailsWithErrno(EDESTADDRREQ));
  ASSERT_THAT(sendto(s.get(), "hello", 5, 0, SA(&a), sizeof(a)),
              SyscallSucceedsWithValue(5));
  ASSERT_THAT(sendto(s.get(), "hi", 2, 0, SA(&a), sizeof(a)),
              SyscallSucceedsWithValue(2));
  char buf[16];
  sockaddr_in from = {};
  socklen_t flen = sizeof(from);
  pollfd pfd = {r.get(), POLLIN, 0};
  ASSERT_THAT(poll(&pfd, 1, 5000), SyscallSucceedsWithValue(1));
  EXPECT_THAT(recvfrom(r.get(), buf, 3, 0, SA(&from), &flen),
              SyscallSucceedsWithValue(3));
  EXPECT_EQ(flen, sizeof(from));
  EXPECT_EQ(ntohs(from.sin_port), PortOf(s.get()));
  EXPECT_EQ(from.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
  EXPECT_THAT(recv(r.get(), buf, sizeof(buf), 0), SyscallSucceedsWithValue(2));

  std::vector<char> big(65508);
  EXPECT_THAT(sendto(s.get(), big.data(), big.size(), 0, SA(&a), sizeof(a)),
              SyscallFailsWithErrno(EMSGSIZE));
}

TEST(InetLoopbackTest, ConnectedUdpLearnsOfClosedPorts) {
  FileDescriptor gone(socket(AF_INET, SOCK_DGRAM, 0));
  sockaddr_in a = V4("127.0.0.1", 0);
  ASSERT_THAT(bind(gone.get(), SA(&a), sizeof(a)), SyscallSucceeds());
  a.sin_port = htons(PortOf(gone.get()));
  gone.reset();
  FileDescriptor s(socket(AF_INET, SOCK_DGRAM, 0));
  ASSERT_THAT(connect(s.get(), SA(&a), sizeof(a)), SyscallSucceeds());
  sockaddr_in peer = {};
  socklen_t len = sizeof(peer);
  ASSERT_THAT(getpeername(s.get(), SA(&peer), &len), SyscallSucceeds());
  EXPECT_EQ(peer.sin_port, a.sin_port);
  EXPECT_THAT(send(s.get(), "x", 1, 0), SyscallSucceedsWithValue(1));
  int err = 0;
  for (int i = 0; i < 50 && !err; i++) {
    if (send(s.get(), "x", 1, 0) < 0) err = errno;
    usleep(10 * 1000);
  }
  EXPECT_EQ(err, ECONNREFUSED);
}

TEST(InetLoopbackTest, UdpIPv6) {
  FileDescriptor r(socket(AF_INET6, SOCK_DGRAM, 0));
  sockaddr_in6 a = V6("::", 0);
  ASSERT_THAT(bind(r.get(), SA(&a), sizeof(a)), SyscallSucceeds());
  FileDescriptor s(socket(AF_INET, SOCK_DGRAM, 0));
  sockaddr_in to = V4("127.0.0.1", PortOf(r.get()));
  ASSERT_THAT(sendto(s.get(), "v4", 2, 0, SA(&to), sizeof(to)),
              SyscallSucceedsWithValue(2));
  char buf[4];
  sockaddr_in6 from = {};
  socklen_t flen = sizeof(from);
  ASSERT_THAT(recvfrom(r.get(), buf, sizeof(buf), 0, SA(&from), &flen),
              SyscallSucceedsWithValue(2));
  EXPECT_EQ(flen, sizeof(from));
  EXPECT_TRUE(IN6_IS_ADDR_V4MAPPED(&from.sin6_addr));
}

TEST(InetLoopbackTest, BulkTransferWithBlockedWriter) {
  FileDescriptor l = TcpListener();
  FileDescriptor c = TcpConnect(PortOf(l.get()));
  FileDescriptor s(accept(l.get(), nullptr, nullptr));
  ASSERT_TRUE(s.valid());
  constexpr size_t kTotal = 8 << 20;
  std::thread writer([&] {
    std::vector<char> chunk(1 << 20, 'w');
    for (size_t sent = 0; sent < kTotal;) {
      ssize_t n = write(c.get(), chunk.data(), chunk.size());
      ASSERT_GT(n, 0) << strerror(errno);
      sent += n;
    }
  });
  std::vector<char> buf(1 << 16);
  size_t got = 0;
  while (got < kTotal) {
    ssize_t n = read(s.get(), buf.data(), buf.size());
    ASSERT_GT(n, 0);
    got += n;
  }
  writer.join();
}

TEST(InetLoopbackTest, UdpDisconnectAndPeek) {
  FileDescriptor r(socket(AF_INET, SOCK_DGRAM, 0));
  sockaddr_in a = V4("127.0.0.1", 0);
  ASSERT_THAT(bind(r.get(), SA(&a), sizeof(a)), SyscallSucceeds());
  a.sin_port = htons(PortOf(r.get()));
  FileDescriptor s(socket(AF_INET, SOCK_DGRAM, 0));
  ASSERT_THAT(connect(s.get(), SA(&a), sizeof(a)), SyscallSucceeds());
  ASSERT_THAT(send(s.get(), "peekaboo", 8, 0), SyscallSucceedsWithValue(8));
  char buf[4];
  pollfd pfd = {r.get(), POLLIN, 0};
  ASSERT_THAT(poll(&pfd, 1, 5000), SyscallSucceedsWithValue(1));
  int n = 0;
  ASSERT_THAT(ioctl(r.get(), FIONREAD, &n), SyscallSucceeds());
  EXPECT_EQ(n, 8);
  EXPECT_THAT(recv(r.get(), buf, sizeof(buf), MSG_PEEK | MSG_TRUNC),
              SyscallSucceedsWithValue(8));
  EXPECT_THAT(recv(r.get(), buf, sizeof(buf), 0), SyscallSucceedsWithValue(4));
  EXPECT_THAT(recv(r.get(), buf, sizeof(buf), MSG_DONTWAIT),
              SyscallFailsWithErrno(EAGAIN));
  sockaddr un = {};
  un.sa_family = AF_UNSPEC;
  ASSERT_THAT(connect(s.get(), &un, sizeof(un)), SyscallSucceeds());
  sockaddr_in peer = {};
  socklen_t len = sizeof(peer);
  EXPECT_THAT(getpeername(s.get(), SA(&peer), &len),
              SyscallFailsWithErrno(ENOTCONN));
  EXPECT_THAT(send(s.get(), "x", 1, 0), SyscallFailsWithErrno(EDESTADDRREQ));
}

TEST(InetLoopbackTest, UdpReuseAddrDeliversToNewest) {
  FileDescriptor a(socket(AF_INET, SOCK_DGRAM, 0));
  FileDescriptor b(socket(AF_INET, SOCK_DGRAM, 0));
  int on = 1;
  ASSERT_THAT(setsockopt(a.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)),
              SyscallSucceeds());
  ASSERT_THAT(setsockopt(b.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)),
              SyscallSucceeds());
  sockaddr_in addr = V4("127.0.0.1", 0);
  ASSERT_THAT(bind(a.get(), SA(&addr), sizeof(addr)), SyscallSucceeds());
  addr.sin_port = htons(PortOf(a.get()));
  ASSERT_THAT(bind(b.get(), SA(&addr), sizeof(addr)), SyscallSucceeds());
  FileDescriptor s(socket(AF_INET, SOCK_DGRAM, 0));
  ASSERT_THAT(sendto(s.get(), "x", 1, 0, SA(&addr), sizeof(addr)),
              SyscallSucceedsWithValue(1));
  pollfd pfd = {b.get(), POLLIN, 0};
  EXPECT_THAT(poll(&pfd, 1, 5000), SyscallSucceedsWithValue(1));
  char c;
  EXPECT_THAT(recv(a.get(), &c, 1, MSG_DONTWAIT),
              SyscallFailsWithErrno(EAGAIN));
}

TEST(InetLoopbackTest, HalfCloseReportsRdhup) {
  FileDescriptor l = TcpListener();
  FileDescriptor c = TcpConnect(PortOf(l.get()));
  FileDescriptor s(accept(l.get(), nullptr, nullptr));
  ASSERT_THAT(shutdown(c.get(), SHUT_WR), SyscallSucceeds());
  pollfd pfd = {s.get(), POLLIN | POLLRDHUP, 0};
  ASSERT_THAT(poll(&pfd, 1, 5000), SyscallSucceedsWithValue(1));
  EXPECT_EQ(pfd.revents, POLLIN | POLLRDHUP);
  // The writer side is not hung up; it can still read.
  pfd = {c.get(), POLLIN | POLLOUT, 0};
  ASSERT_THAT(poll(&pfd, 1, 0), SyscallSucceedsWithValue(1));
  EXPECT_EQ(pfd.revents, POLLOUT);
}

TEST(InetLoopbackTest, ProcNetTcpListsListener) {
  FileDescriptor l = TcpListener();
  char want[32];
  snprintf(want, sizeof(want), "0100007F:%04X 00000000:0000 0A",
           PortOf(l.get()));
  std::string table = ReadFile("/proc/net/tcp");
  EXPECT_NE(table.find("  sl  local_address rem_address   st"),
            std::string::npos);
  EXPECT_NE(table.find(want), std::string::npos) << table;
}

TEST(InetLoopbackTest, UdpPacketInfoAndTimestamp) {
  FileDescriptor r(socket(AF_INET, SOCK_DGRAM, 0));
  sockaddr_in a = V4("127.0.0.1", 0);
  ASSERT_THAT(bind(r.get(), SA(&a), sizeof(a)), SyscallSucceeds());
  a.sin_port = htons(PortOf(r.get()));
  int on = 1;
  ASSERT_THAT(setsockopt(r.get(), IPPROTO_IP, IP_PKTINFO, &on, sizeof(on)),
              SyscallSucceeds());
  ASSERT_THAT(setsockopt(r.get(), SOL_SOCKET, SO_TIMESTAMP, &on, sizeof(on)),
              SyscallSucceeds());
  timeval before;
  gettimeofday(&before, nullptr);
  FileDescriptor s(socket(AF_INET, SOCK_DGRAM, 0));
  ASSERT_THAT(sendto(s.get(), "x", 1, 0, SA(&a), sizeof(a)),
              SyscallSucceedsWithValue(1));
  char c;
  iovec iov = {&c, 1};
  alignas(cmsghdr) char cbuf[256] = {};
  msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = cbuf;
  msg.msg_controllen = sizeof(cbuf);
  pollfd pfd = {r.get(), POLLIN, 0};
  ASSERT_THAT(poll(&pfd, 1, 5000), SyscallSucceedsWithValue(1));
  ASSERT_THAT(recvmsg(r.get(), &msg, 0), SyscallSucceedsWithValue(1));
  bool pktinfo = false, stamp = false;
  for (cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
    if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
      in_pktinfo info;
      memcpy(&info, CMSG_DATA(cm), sizeof(info));
      EXPECT_EQ(info.ipi_ifindex, 1);
      EXPECT_EQ(info.ipi_addr.s_addr, htonl(INADDR_LOOPBACK));
      pktinfo = true;
    }
    if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMP) {
      timeval tv;
      memcpy(&tv, CMSG_DATA(cm), sizeof(tv));
      EXPECT_GE(tv.tv_sec, before.tv_sec);
      stamp = true;
    }
  }
  EXPECT_TRUE(pktinfo);
  EXPECT_TRUE(stamp);
}

TEST(InetLoopbackTest, TcpTruncDiscards) {
  FileDescriptor l = TcpListener();
  FileDescriptor c = TcpConnect(PortOf(l.get()));
  FileDescriptor s(accept(l.get(), nullptr, nullptr));
  ASSERT_THAT(write(c.get(), "abcdef", 6), SyscallSucceedsWithValue(6));
  pollfd pfd = {s.get(), POLLIN, 0};
  ASSERT_THAT(poll(&pfd, 1, 5000), SyscallSucceedsWithValue(1));
  char buf[8] = {};
  EXPECT_THAT(recv(s.get(), buf, 4, MSG_TRUNC), SyscallSucceedsWithValue(4));
  EXPECT_EQ(buf[0], 0);
  EXPECT_THAT(recv(s.get(), buf, sizeof(buf), 0), SyscallSucceedsWithValue(2));
  EXPECT_EQ(std::string(buf, 2), "ef");
}

// Runs fn in a child; natively in a fresh network namespace (only a down
// lo, no routes), which is the view the sandbox gives. Returns the child's
// exit status, or -1 to skip.
int InEmptyNetwork(int (*fn)()) {
  pid_t pid = fork();
  if (pid == 0) {
    if (!IsRunningOnSandbox() && unshare(CLONE_NEWNET) != 0) _exit(100);
    _exit(fn());
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 100) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 99;
}

int ConnectOffLoopback() {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = V4("192.0.2.77", 80);
  if (connect(s, SA(&a), sizeof(a)) == 0) return 1;
  if (errno != ENETUNREACH) return 2;
  int u = socket(AF_INET, SOCK_DGRAM, 0);
  if (sendto(u, "x", 1, 0, SA(&a), sizeof(a)) == 0) return 3;
  if (errno != ENETUNREACH) return 4;
  return 0;
}

TEST(InetLoopbackTest, OtherAddressesAreUnreachable) {
  // With host networking the address would be tried on the host's network;
  // these tests must send nothing off loopback.
  SKIP_IF(IsRunningWithHostNetwork());
  int r = InEmptyNetwork(ConnectOffLoopback);
  if (r == -1) GTEST_SKIP() << "needs CAP_SYS_ADMIN for unshare(CLONE_NEWNET)";
  EXPECT_EQ(r, 0);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
