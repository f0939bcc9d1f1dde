// Raw ICMP and ICMPv6 sockets on loopback: an echo request comes back with
// its reply, as ping relies on (net/ipv4/raw.c, net/ipv4/icmp.c,
// net/ipv6/raw.c). Raw sockets need CAP_NET_RAW.

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/file_descriptor.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

uint16_t Checksum(const void* data, size_t len) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < len; i += 2) sum += (p[i] << 8) | p[i + 1];
  if (len % 2) sum += p[len - 1] << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return htons(~sum & 0xffff);
}

// Waits up to five seconds for a packet that pred accepts; returns its
// length, or -1.
template <typename Pred>
ssize_t ReceiveMatching(int fd, char* buf, size_t len, Pred pred) {
  for (int i = 0; i < 100; i++) {
    pollfd pfd = {fd, POLLIN, 0};
    if (poll(&pfd, 1, 5000) != 1) return -1;
    ssize_t n = recv(fd, buf, len, 0);
    if (n < 0) return -1;
    if (pred(n)) return n;
  }
  return -1;
}

TEST(IcmpTest, RawEchoV4) {
  int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
  if (fd < 0 && errno == EPERM) GTEST_SKIP() << "needs CAP_NET_RAW";
  ASSERT_GE(fd, 0) << strerror(errno);
  FileDescriptor s(fd);
  const uint16_t id = 0x4242 ^ getpid();
  struct {
    icmphdr h;
    char payload[8];
  } req = {};
  req.h.type = ICMP_ECHO;
  req.h.un.echo.id = htons(id);
  req.h.un.echo.sequence = htons(7);
  memcpy(req.payload, "pyvisor!", 8);
  req.h.checksum = Checksum(&req, sizeof(req));
  sockaddr_in to = {};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_THAT(sendto(s.get(), &req, sizeof(req), 0,
                     reinterpret_cast<sockaddr*>(&to), sizeof(to)),
              SyscallSucceedsWithValue(sizeof(req)));
  char buf[256];
  ssize_t n = ReceiveMatching(s.get(), buf, sizeof(buf), [&](ssize_t n) {
    if (n < static_cast<ssize_t>(sizeof(iphdr) + sizeof(icmphdr))) {
      return false;
    }
    const icmphdr* h = reinterpret_cast<const icmphdr*>(buf + sizeof(iphdr));
    return h->type == ICMP_ECHOREPLY && ntohs(h->un.echo.id) == id;
  });
  ASSERT_EQ(n, static_cast<ssize_t>(sizeof(iphdr) + sizeof(req)));
  const iphdr* ip = reinterpret_cast<const iphdr*>(buf);
  EXPECT_EQ(ip->version, 4);
  EXPECT_EQ(ip->protocol, IPPROTO_ICMP);
  EXPECT_EQ(ip->saddr, htonl(INADDR_LOOPBACK));
  EXPECT_EQ(Checksum(buf, sizeof(iphdr)), 0);
  EXPECT_EQ(Checksum(buf + sizeof(iphdr), sizeof(req)), 0);
  EXPECT_EQ(memcmp(buf + sizeof(iphdr) + sizeof(icmphdr), "pyvisor!", 8), 0);
}

TEST(IcmpTest, RawEchoV6) {
  int fd = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMPV6);
  if (fd < 0 && errno == EPERM) GTEST_SKIP() << "needs CAP_NET_RAW";
  ASSERT_GE(fd, 0) << strerror(errno);
  FileDescriptor s(fd);
  const uint16_t id = 0x6666 ^ getpid();
  icmp6_hdr req = {};
  req.icmp6_type = ICMP6_ECHO_REQUEST;
  req.icmp6_id = htons(id);
  req.icmp6_seq = htons(1);
  // The kernel computes ICMPv6 checksums.
  sockaddr_in6 to = {};
  to.sin6_family = AF_INET6;
  to.sin6_addr = in6addr_loopback;
  ASSERT_THAT(sendto(s.get(), &req, sizeof(req), 0,
                     reinterpret_cast<sockaddr*>(&to), sizeof(to)),
              SyscallSucceedsWithValue(sizeof(req)));
  char buf[256];
  ssize_t n = ReceiveMatching(s.get(), buf, sizeof(buf), [&](ssize_t n) {
    const icmp6_hdr* h = reinterpret_cast<const icmp6_hdr*>(buf);
    return n >= static_cast<ssize_t>(sizeof(icmp6_hdr)) &&
           h->icmp6_type == ICMP6_ECHO_REPLY && ntohs(h->icmp6_id) == id;
  });
  EXPECT_EQ(n, static_cast<ssize_t>(sizeof(req)));
}

TEST(IcmpTest, PingSocketsNeedTheirGroup) {
  // net.ipv4.ping_group_range is "1 0" by default: nobody may.
  char range[64] = {};
  FILE* f = fopen("/proc/sys/net/ipv4/ping_group_range", "r");
  if (f != nullptr) {
    fgets(range, sizeof(range), f);
    fclose(f);
  }
  if (strncmp(range, "1\t0", 3) != 0) {
    GTEST_SKIP() << "ping sockets allowed here: " << range;
  }
  EXPECT_THAT(socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP),
              SyscallFailsWithErrno(EACCES));
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
