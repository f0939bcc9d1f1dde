// NETLINK_ROUTE sockets and the interface ioctls, as far as the loopback
// interface "lo" goes, which every network namespace has
// (net/netlink/af_netlink.c, net/core/rtnetlink.c, net/core/dev_ioctl.c).

// <net/if.h> and <net/if_arp.h> first: the kernel's <linux/if.h> defers to
// them when they come first.
#include <net/if.h>
#include <net/if_arp.h>
// clang-format off
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
// clang-format on
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/file_descriptor.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

FileDescriptor RouteSocket() {
  FileDescriptor s(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  EXPECT_TRUE(s.valid()) << strerror(errno);
  return s;
}

// Sends a request with payload and returns every reply message until
// NLMSG_DONE, an error, or a message that is not part of a dump.
std::vector<std::string> Request(int fd, uint16_t type, uint16_t flags,
                                 const void* payload, size_t len,
                                 uint32_t seq) {
  std::string req(NLMSG_LENGTH(len), '\0');
  nlmsghdr* h = reinterpret_cast<nlmsghdr*>(&req[0]);
  h->nlmsg_len = NLMSG_LENGTH(len);
  h->nlmsg_type = type;
  h->nlmsg_flags = flags | NLM_F_REQUEST;
  h->nlmsg_seq = seq;
  memcpy(NLMSG_DATA(h), payload, len);
  EXPECT_THAT(send(fd, req.data(), req.size(), 0),
              SyscallSucceedsWithValue(req.size()));
  std::vector<std::string> out;
  while (true) {
    std::vector<char> buf(65536);
    ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    EXPECT_GT(n, 0) << strerror(errno);
    if (n <= 0) return out;
    int left = n;
    for (nlmsghdr* m = reinterpret_cast<nlmsghdr*>(buf.data());
         NLMSG_OK(m, left); m = NLMSG_NEXT(m, left)) {
      EXPECT_EQ(m->nlmsg_seq, seq);
      out.emplace_back(reinterpret_cast<char*>(m), m->nlmsg_len);
      if (m->nlmsg_type == NLMSG_DONE || m->nlmsg_type == NLMSG_ERROR ||
          !(m->nlmsg_flags & NLM_F_MULTI)) {
        return out;
      }
    }
  }
}

const nlmsghdr* Hdr(const std::string& m) {
  return reinterpret_cast<const nlmsghdr*>(m.data());
}

// Calls fn(type, data, len) for each attribute after a fixed header of
// size fixed.
void ForEachAttr(const std::string& m, size_t fixed,
                 const std::function<void(int, const char*, int)>& fn) {
  const nlmsghdr* h = Hdr(m);
  int left = h->nlmsg_len - NLMSG_LENGTH(fixed);
  const rtattr* a = reinterpret_cast<const rtattr*>(
      reinterpret_cast<const char*>(NLMSG_DATA(h)) + NLMSG_ALIGN(fixed));
  for (; RTA_OK(a, left); a = RTA_NEXT(a, left)) {
    fn(a->rta_type, reinterpret_cast<const char*>(RTA_DATA(a)),
       RTA_PAYLOAD(a));
  }
}

TEST(NetlinkRouteTest, CreationAndNames) {
  EXPECT_THAT(socket(AF_NETLINK, SOCK_STREAM, NETLINK_ROUTE),
              SyscallFailsWithErrno(ESOCKTNOSUPPORT));
  // A protocol no kernel part registered.
  EXPECT_THAT(socket(AF_NETLINK, SOCK_RAW, 31),
              SyscallFailsWithErrno(EPROTONOSUPPORT));
  FileDescriptor s = RouteSocket();
  sockaddr_nl a = {};
  socklen_t len = sizeof(a);
  ASSERT_THAT(getsockname(s.get(), reinterpret_cast<sockaddr*>(&a), &len),
              SyscallSucceeds());
  EXPECT_EQ(len, sizeof(a));
  EXPECT_EQ(a.nl_family, AF_NETLINK);
  EXPECT_EQ(a.nl_pid, 0u);
  sockaddr_nl b = {};
  b.nl_family = AF_NETLINK;
  ASSERT_THAT(bind(s.get(), reinterpret_cast<sockaddr*>(&b), sizeof(b)),
              SyscallSucceeds());
  ASSERT_THAT(getsockname(s.get(), reinterpret_cast<sockaddr*>(&a), &len),
              SyscallSucceeds());
  EXPECT_EQ(a.nl_pid, static_cast<uint32_t>(getpid()));
  // The process's id is taken; a second socket gets another.
  FileDescriptor s2 = RouteSocket();
  ASSERT_THAT(bind(s2.get(), reinterpret_cast<sockaddr*>(&b), sizeof(b)),
              SyscallSucceeds());
  ASSERT_THAT(getsockname(s2.get(), reinterpret_cast<sockaddr*>(&a), &len),
              SyscallSucceeds());
  EXPECT_NE(a.nl_pid, static_cast<uint32_t>(getpid()));
  EXPECT_NE(a.nl_pid, 0u);
  b.nl_family = AF_INET;
  EXPECT_THAT(bind(s2.get(), reinterpret_cast<sockaddr*>(&b), sizeof(b)),
              SyscallFailsWithErrno(EINVAL));
}

TEST(NetlinkRouteTest, LinkDumpHasLoopback) {
  FileDescriptor s = RouteSocket();
  ifinfomsg ifi = {};
  ifi.ifi_family = AF_UNSPEC;
  std::vector<std::string> msgs =
      Request(s.get(), RTM_GETLINK, NLM_F_DUMP, &ifi, sizeof(ifi), 42);
  ASSERT_FALSE(msgs.empty());
  EXPECT_EQ(Hdr(msgs.back())->nlmsg_type, NLMSG_DONE);
  bool found = false;
  for (const std::string& m : msgs) {
    if (Hdr(m)->nlmsg_type != RTM_NEWLINK) continue;
    const ifinfomsg* info =
        reinterpret_cast<const ifinfomsg*>(NLMSG_DATA(Hdr(m)));
    if (info->ifi_index != 1) continue;
    found = true;
    EXPECT_EQ(info->ifi_type, ARPHRD_LOOPBACK);
    EXPECT_EQ(info->ifi_flags & (IFF_UP | IFF_LOOPBACK),
              unsigned(IFF_UP | IFF_LOOPBACK));
    std::string name;
    uint32_t mtu = 0;
    ForEachAttr(m, sizeof(ifinfomsg), [&](int type, const char* d, int n) {
      if (type == IFLA_IFNAME) name = d;
      if (type == IFLA_MTU && n == 4) memcpy(&mtu, d, 4);
    });
    EXPECT_EQ(name, "lo");
    EXPECT_EQ(mtu, 65536u);
  }
  EXPECT_TRUE(found);
}

TEST(NetlinkRouteTest, AddressDumpHasLoopbackAddresses) {
  FileDescriptor s = RouteSocket();
  ifaddrmsg ifa = {};
  ifa.ifa_family = AF_INET;
  std::vector<std::string> msgs =
      Request(s.get(), RTM_GETADDR, NLM_F_DUMP, &ifa, sizeof(ifa), 7);
  ASSERT_FALSE(msgs.empty());
  EXPECT_EQ(Hdr(msgs.back())->nlmsg_type, NLMSG_DONE);
  bool found = false;
  for (const std::string& m : msgs) {
    if (Hdr(m)->nlmsg_type != RTM_NEWADDR) continue;
    const ifaddrmsg* info =
        reinterpret_cast<const ifaddrmsg*>(NLMSG_DATA(Hdr(m)));
    EXPECT_EQ(info->ifa_family, AF_INET);
    if (info->ifa_index != 1) continue;
    ForEachAttr(m, sizeof(ifaddrmsg), [&](int type, const char* d, int n) {
      if (type == IFA_LOCAL && n == 4) {
        in_addr a;
        memcpy(&a, d, 4);
        if (a.s_addr == htonl(INADDR_LOOPBACK)) found = true;
      }
    });
    EXPECT_EQ(info->ifa_prefixlen, 8);
    EXPECT_EQ(info->ifa_scope, RT_SCOPE_HOST);
  }
  EXPECT_TRUE(found);

  ifa.ifa_family = AF_INET6;
  msgs = Request(s.get(), RTM_GETADDR, NLM_F_DUMP, &ifa, sizeof(ifa), 8);
  bool found6 = false;
  for (const std::string& m : msgs) {
    if (Hdr(m)->nlmsg_type != RTM_NEWADDR) continue;
    const ifaddrmsg* info =
        reinterpret_cast<const ifaddrmsg*>(NLMSG_DATA(Hdr(m)));
    EXPECT_EQ(info->ifa_family, AF_INET6);
    if (info->ifa_index == 1 && info->ifa_prefixlen == 128) found6 = true;
  }
  EXPECT_TRUE(found6);
}

TEST(NetlinkRouteTest, GetOneLink) {
  FileDescriptor s = RouteSocket();
  ifinfomsg ifi = {};
  ifi.ifi_index = 1;
  std::vector<std::string> msgs =
      Request(s.get(), RTM_GETLINK, 0, &ifi, sizeof(ifi), 3);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(Hdr(msgs[0])->nlmsg_type, RTM_NEWLINK);

  ifi.ifi_index = 0x7ffffff0;
  msgs = Request(s.get(), RTM_GETLINK, 0, &ifi, sizeof(ifi), 4);
  ASSERT_EQ(msgs.size(), 1u);
  ASSERT_EQ(Hdr(msgs[0])->nlmsg_type, NLMSG_ERROR);
  const nlmsgerr* err =
      reinterpret_cast<const nlmsgerr*>(NLMSG_DATA(Hdr(msgs[0])));
  EXPECT_EQ(err->error, -ENODEV);
  EXPECT_EQ(err->msg.nlmsg_seq, 4u);
  EXPECT_EQ(err->msg.nlmsg_type, RTM_GETLINK);
}

TEST(NetlinkRouteTest, AckAndTruncation) {
  FileDescriptor s = RouteSocket();
  // A no-op with NLM_F_ACK is acknowledged with error 0.
  std::vector<std::string> msgs =
      Request(s.get(), NLMSG_NOOP, NLM_F_ACK, nullptr, 0, 9);
  ASSERT_EQ(msgs.size(), 1u);
  ASSERT_EQ(Hdr(msgs[0])->nlmsg_type, NLMSG_ERROR);
  EXPECT_EQ(reinterpret_cast<const nlmsgerr*>(NLMSG_DATA(Hdr(msgs[0])))->error,
            0);

  struct {
    nlmsghdr h;
    ifinfomsg i;
  } req = {};
  req.h.nlmsg_len = sizeof(req);
  req.h.nlmsg_type = RTM_GETLINK;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.h.nlmsg_seq = 10;
  ASSERT_THAT(send(s.get(), &req, sizeof(req), 0),
              SyscallSucceedsWithValue(sizeof(req)));
  char small[16];
  int full = recv(s.get(), small, sizeof(small), MSG_PEEK | MSG_TRUNC);
  ASSERT_GT(full, static_cast<int>(sizeof(small)));
  iovec iov = {small, sizeof(small)};
  msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  EXPECT_THAT(recvmsg(s.get(), &msg, MSG_PEEK),
              SyscallSucceedsWithValue(sizeof(small)));
  EXPECT_EQ(msg.msg_flags & MSG_TRUNC, MSG_TRUNC);
  std::vector<char> buf(full);
  EXPECT_THAT(recv(s.get(), buf.data(), buf.size(), 0),
              SyscallSucceedsWithValue(full));
}

TEST(NetlinkRouteTest, InterfaceNames) {
  EXPECT_EQ(if_nametoindex("lo"), 1u);
  char name[IF_NAMESIZE] = {};
  ASSERT_NE(if_indextoname(1, name), nullptr);
  EXPECT_STREQ(name, "lo");
}

TEST(NetlinkRouteTest, InterfaceIoctls) {
  FileDescriptor s(socket(AF_INET, SOCK_DGRAM, 0));
  ifreq ifr = {};
  strcpy(ifr.ifr_name, "lo");
  ASSERT_THAT(ioctl(s.get(), SIOCGIFINDEX, &ifr), SyscallSucceeds());
  EXPECT_EQ(ifr.ifr_ifindex, 1);
  ASSERT_THAT(ioctl(s.get(), SIOCGIFFLAGS, &ifr), SyscallSucceeds());
  EXPECT_EQ(ifr.ifr_flags & (IFF_UP | IFF_LOOPBACK), IFF_UP | IFF_LOOPBACK);
  ASSERT_THAT(ioctl(s.get(), SIOCGIFMTU, &ifr), SyscallSucceeds());
  EXPECT_EQ(ifr.ifr_mtu, 65536);
  ASSERT_THAT(ioctl(s.get(), SIOCGIFTXQLEN, &ifr), SyscallSucceeds());
  EXPECT_EQ(ifr.ifr_qlen, 1000);
  ifreq byindex = {};
  byindex.ifr_ifindex = 1;
  ASSERT_THAT(ioctl(s.get(), SIOCGIFNAME, &byindex), SyscallSucceeds());
  EXPECT_STREQ(byindex.ifr_name, "lo");
  ifreq bad = {};
  strcpy(bad.ifr_name, "nosuch0");
  EXPECT_THAT(ioctl(s.get(), SIOCGIFFLAGS, &bad), SyscallFailsWithErrno(ENODEV));
  bad.ifr_ifindex = 0x7ffffff0;
  EXPECT_THAT(ioctl(s.get(), SIOCGIFNAME, &bad), SyscallFailsWithErrno(ENODEV));

  // Unix sockets answer the same requests.
  FileDescriptor u(socket(AF_UNIX, SOCK_STREAM, 0));
  ASSERT_THAT(ioctl(u.get(), SIOCGIFINDEX, &ifr), SyscallSucceeds());
  EXPECT_EQ(ifr.ifr_ifindex, 1);

  ifconf conf = {};
  ASSERT_THAT(ioctl(s.get(), SIOCGIFCONF, &conf), SyscallSucceeds());
  ASSERT_GT(conf.ifc_len, 0);
  EXPECT_EQ(conf.ifc_len % sizeof(ifreq), 0u);
  std::vector<ifreq> reqs(conf.ifc_len / sizeof(ifreq));
  conf.ifc_req = reqs.data();
  ASSERT_THAT(ioctl(s.get(), SIOCGIFCONF, &conf), SyscallSucceeds());
  bool found = false;
  for (size_t i = 0; i < conf.ifc_len / sizeof(ifreq); i++) {
    const sockaddr_in* a =
        reinterpret_cast<const sockaddr_in*>(&reqs[i].ifr_addr);
    if (std::string(reqs[i].ifr_name) == "lo" &&
        a->sin_addr.s_addr == htonl(INADDR_LOOPBACK)) {
      found = true;
    }
  }
  EXPECT_TRUE(found);
}

TEST(NetlinkRouteTest, ChangesThatChangeNothing) {
  FileDescriptor s = RouteSocket();
  // `ip link set lo up`: lo is up already.
  ifinfomsg ifi = {};
  ifi.ifi_index = 1;
  ifi.ifi_flags = IFF_UP;
  ifi.ifi_change = IFF_UP;
  std::vector<std::string> msgs =
      Request(s.get(), RTM_NEWLINK, NLM_F_ACK, &ifi, sizeof(ifi), 20);
  ASSERT_EQ(msgs.size(), 1u);
  ASSERT_EQ(Hdr(msgs[0])->nlmsg_type, NLMSG_ERROR);
  int err = reinterpret_cast<const nlmsgerr*>(NLMSG_DATA(Hdr(msgs[0])))->error;
  if (err == -EPERM) GTEST_SKIP() << "needs CAP_NET_ADMIN";
  EXPECT_EQ(err, 0);

  // `ip addr add 127.0.0.1/8 dev lo`: it exists.
  struct {
    ifaddrmsg ifa;
    rtattr rta;
    in_addr addr;
  } add = {};
  add.ifa.ifa_family = AF_INET;
  add.ifa.ifa_prefixlen = 8;
  add.ifa.ifa_index = 1;
  add.rta.rta_len = RTA_LENGTH(sizeof(in_addr));
  add.rta.rta_type = IFA_LOCAL;
  add.addr.s_addr = htonl(INADDR_LOOPBACK);
  msgs = Request(s.get(), RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
                 &add, sizeof(add), 21);
  ASSERT_EQ(msgs.size(), 1u);
  ASSERT_EQ(Hdr(msgs[0])->nlmsg_type, NLMSG_ERROR);
  EXPECT_EQ(reinterpret_cast<const nlmsgerr*>(NLMSG_DATA(Hdr(msgs[0])))->error,
            -EEXIST);

  // SIOCSIFFLAGS with the flags lo has.
  FileDescriptor u(socket(AF_INET, SOCK_DGRAM, 0));
  ifreq ifr = {};
  strcpy(ifr.ifr_name, "lo");
  ASSERT_THAT(ioctl(u.get(), SIOCGIFFLAGS, &ifr), SyscallSucceeds());
  EXPECT_THAT(ioctl(u.get(), SIOCSIFFLAGS, &ifr), SyscallSucceeds());
  strcpy(ifr.ifr_name, "nosuch0");
  EXPECT_THAT(ioctl(u.get(), SIOCSIFFLAGS, &ifr), SyscallFailsWithErrno(ENODEV));
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
