// inotify(7): instances, watches and the events of changes made by the
// sandbox's own processes.

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
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

struct Event {
  int wd;
  uint32_t mask;
  uint32_t cookie;
  std::string name;
};

// ReadEvents reads what is queued (the instance must be non-blocking).
std::vector<Event> ReadEvents(int fd) {
  std::vector<Event> out;
  char buf[4096] __attribute__((aligned(8)));
  ssize_t n = read(fd, buf, sizeof(buf));
  if (n < 0) {
    EXPECT_EQ(errno, EAGAIN);
    return out;
  }
  for (ssize_t off = 0; off < n;) {
    struct inotify_event* e = reinterpret_cast<struct inotify_event*>(buf + off);
    EXPECT_EQ(e->len % sizeof(struct inotify_event), 0u);
    out.push_back({e->wd, e->mask, e->cookie,
                   e->len ? std::string(e->name) : std::string()});
    off += sizeof(struct inotify_event) + e->len;
  }
  return out;
}

FileDescriptor NewInotify() {
  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  EXPECT_THAT(fd, SyscallSucceeds());
  return FileDescriptor(fd);
}

TEST(InotifyTest, InitFlags) {
  FileDescriptor fd = NewInotify();
  EXPECT_THAT(fcntl(fd.get(), F_GETFL), SyscallSucceedsWithValue(O_NONBLOCK));
  EXPECT_THAT(fcntl(fd.get(), F_GETFD), SyscallSucceedsWithValue(FD_CLOEXEC));
  EXPECT_THAT(inotify_init1(0x1), SyscallFailsWithErrno(EINVAL));
  FileDescriptor plain(inotify_init());
  ASSERT_THAT(plain.get(), SyscallSucceeds());
  EXPECT_THAT(fcntl(plain.get(), F_GETFL), SyscallSucceedsWithValue(O_RDONLY));
  char link[64];
  ssize_t n = readlink(("/proc/self/fd/" + std::to_string(fd.get())).c_str(),
                       link, sizeof(link));
  ASSERT_THAT(n, SyscallSucceeds());
  EXPECT_EQ(std::string(link, n), "anon_inode:inotify");
}

TEST(InotifyTest, AddWatchErrors) {
  TempDir dir;
  ASSERT_TRUE(WriteFile(dir.Join("f"), ""));
  FileDescriptor fd = NewInotify();
  EXPECT_THAT(inotify_add_watch(fd.get(), dir.path().c_str(), 0),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(inotify_add_watch(fd.get(), dir.Join("none").c_str(), IN_ALL_EVENTS),
              SyscallFailsWithErrno(ENOENT));
  EXPECT_THAT(inotify_add_watch(fd.get(), dir.Join("f").c_str(),
                                IN_MODIFY | IN_ONLYDIR),
              SyscallFailsWithErrno(ENOTDIR));
  EXPECT_THAT(inotify_add_watch(fd.get(), dir.path().c_str(),
                                IN_MODIFY | IN_MASK_ADD | IN_MASK_CREATE),
              SyscallFailsWithErrno(EINVAL));
  int p[2];
  ASSERT_THAT(pipe(p), SyscallSucceeds());
  FileDescriptor r(p[0]), w(p[1]);
  EXPECT_THAT(inotify_add_watch(r.get(), dir.path().c_str(), IN_MODIFY),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(inotify_rm_watch(fd.get(), 12345), SyscallFailsWithErrno(EINVAL));
  // Reading needs read permission on the file.
  ASSERT_THAT(chmod(dir.Join("f").c_str(), 0), SyscallSucceeds());
  std::string f = dir.Join("f");
  EXPECT_EQ(RunAsNobody([&] {
              int in = inotify_init();
              int wd = inotify_add_watch(in, f.c_str(), IN_MODIFY);
              return wd < 0 && errno == EACCES ? 0 : 1;
            }),
            0);
}

TEST(InotifyTest, OneWatchPerInode) {
  TempDir dir;
  FileDescriptor fd = NewInotify();
  int wd = inotify_add_watch(fd.get(), dir.path().c_str(), IN_CREATE);
  ASSERT_THAT(wd, SyscallSucceeds());
  EXPECT_THAT(inotify_add_watch(fd.get(), dir.path().c_str(), IN_DELETE),
              SyscallSucceedsWithValue(wd));
  EXPECT_THAT(inotify_add_watch(fd.get(), dir.path().c_str(),
                                IN_DELETE | IN_MASK_CREATE),
              SyscallFailsWithErrno(EEXIST));
  // The second add replaced the mask: creations are not reported now.
  ASSERT_TRUE(WriteFile(dir.Join("a"), ""));
  EXPECT_TRUE(ReadEvents(fd.get()).empty());
  ASSERT_THAT(unlink(dir.Join("a").c_str()), SyscallSucceeds());
  std::vector<Event> ev = ReadEvents(fd.get());
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].mask, static_cast<uint32_t>(IN_DELETE));
  EXPECT_EQ(ev[0].name, "a");
  // IN_MASK_ADD adds to it.
  EXPECT_THAT(inotify_add_watch(fd.get(), dir.path().c_str(),
                                IN_CREATE | IN_MASK_ADD),
              SyscallSucceedsWithValue(wd));
  ASSERT_TRUE(WriteFile(dir.Join("b"), ""));
  ASSERT_THAT(unlink(dir.Join("b").c_str()), SyscallSucceeds());
  ev = ReadEvents(fd.get());
  ASSERT_GE(ev.size(), 2u);
  EXPECT_EQ(ev.front().mask, static_cast<uint32_t>(IN_CREATE));
  EXPECT_EQ(ev.back().mask, static_cast<uint32_t>(IN_DELETE));
}

TEST(InotifyTest, CreateEventsAndReadSizes) {
  TempDir dir;
  FileDescriptor fd = NewInotify();
  int wd = inotify_add_watch(fd.get(), dir.path().c_str(), IN_CREATE);
  ASSERT_THAT(wd, SyscallSucceeds());
  char buf[4096];
  EXPECT_THAT(read(fd.get(), buf, sizeof(buf)), SyscallFailsWithErrno(EAGAIN));
  ASSERT_TRUE(WriteFile(dir.Join("file"), ""));
  ASSERT_THAT(mkdir(dir.Join("sub").c_str(), 0755), SyscallSucceeds());
  int queued = 0;
  ASSERT_THAT(ioctl(fd.get(), FIONREAD, &queued), SyscallSucceeds());
  EXPECT_EQ(queued, 2 * 2 * static_cast<int>(sizeof(struct inotify_event)));
  // A buffer too small for the first event.
  EXPECT_THAT(read(fd.get(), buf, sizeof(struct inotify_event)),
              SyscallFailsWithErrno(EINVAL));
  // Room for exactly one event returns one.
  EXPECT_THAT(read(fd.get(), buf, 2 * sizeof(struct inotify_event) + 1),
              SyscallSucceedsWithValue(2 * sizeof(struct inotify_event)));
  struct inotify_event* e = reinterpret_cast<struct inotify_event*>(buf);
  EXPECT_EQ(e->wd, wd);
  EXPECT_EQ(e->mask, static_cast<uint32_t>(IN_CREATE));
  EXPECT_EQ(e->cookie, 0u);
  EXPECT_EQ(e->len, sizeof(struct inotify_event));
  EXPECT_STREQ(e->name, "file");
  std::vector<Event> ev = ReadEvents(fd.get());
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].mask, static_cast<uint32_t>(IN_CREATE | IN_ISDIR));
  EXPECT_EQ(ev[0].name, "sub");
}

TEST(InotifyTest, FileEventsInOrder) {
  TempDir dir;
  std::string path = dir.Join("f");
  ASSERT_TRUE(WriteFile(path, ""));
  FileDescriptor fd = NewInotify();
  int wd = inotify_add_watch(fd.get(), path.c_str(),
                             IN_OPEN | IN_MODIFY | IN_ACCESS | IN_CLOSE |
                                 IN_ATTRIB);
  ASSERT_THAT(wd, SyscallSucceeds());
  int f = open(path.c_str(), O_RDWR);
  ASSERT_THAT(f, SyscallSucceeds());
  ASSERT_THAT(write(f, "ab", 2), SyscallSucceedsWithValue(2));
  // An identical event right after is merged with it.
  ASSERT_THAT(write(f, "cd", 2), SyscallSucceedsWithValue(2));
  char c;
  ASSERT_THAT(pread(f, &c, 1, 0), SyscallSucceedsWithValue(1));
  ASSERT_THAT(fchmod(f, 0600), SyscallSucceeds());
  ASSERT_THAT(close(f), SyscallSucceeds());
  std::vector<Event> ev = ReadEvents(fd.get());
  std::vector<uint32_t> masks;
  for (const Event& e : ev) {
    EXPECT_EQ(e.wd, wd);
    EXPECT_EQ(e.name, "");
    masks.push_back(e.mask);
  }
  EXPECT_THAT(masks, ::testing::ElementsAre(IN_OPEN, IN_MODIFY, IN_ACCESS,
                                            IN_ATTRIB, IN_CLOSE_WRITE));
}

TEST(InotifyTest, ChildEventsOnDirectoryWatch) {
  TempDir dir;
  std::string path = dir.Join("f");
  ASSERT_TRUE(WriteFile(path, ""));
  FileDescriptor fd = NewInotify();
  ASSERT_THAT(inotify_add_watch(fd.get(), dir.path().c_str(),
                                IN_MODIFY | IN_CLOSE_NOWRITE),
              SyscallSucceeds());
  FileDescriptor f(open(path.c_str(), O_WRONLY));
  ASSERT_THAT(write(f.get(), "x", 1), SyscallSucceedsWithValue(1));
  FileDescriptor r(open(path.c_str(), O_RDONLY));
  r.reset();
  std::vector<Event> ev = ReadEvents(fd.get());
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].mask, static_cast<uint32_t>(IN_MODIFY));
  EXPECT_EQ(ev[0].name, "f");
  EXPECT_EQ(ev[1].mask, static_cast<uint32_t>(IN_CLOSE_NOWRITE));
}

TEST(InotifyTest, RenameCookie) {
  TempDir dir;
  ASSERT_TRUE(WriteFile(dir.Join("a"), ""));
  ASSERT_THAT(mkdir(dir.Join("d").c_str(), 0755), SyscallSucceeds());
  FileDescriptor fd = NewInotify();
  int wd1 = inotify_add_watch(fd.get(), dir.path().c_str(), IN_MOVE);
  int wd2 = inotify_add_watch(fd.get(), dir.Join("d").c_str(), IN_MOVE);
  ASSERT_THAT(wd1, SyscallSucceeds());
  ASSERT_THAT(wd2, SyscallSucceeds());
  ASSERT_THAT(rename(dir.Join("a").c_str(), dir.Join("d/b").c_str()),
              SyscallSucceeds());
  std::vector<Event> ev = ReadEvents(fd.get());
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].wd, wd1);
  EXPECT_EQ(ev[0].mask, static_cast<uint32_t>(IN_MOVED_FROM));
  EXPECT_EQ(ev[0].name, "a");
  EXPECT_EQ(ev[1].wd, wd2);
  EXPECT_EQ(ev[1].mask, static_cast<uint32_t>(IN_MOVED_TO));
  EXPECT_EQ(ev[1].name, "b");
  EXPECT_NE(ev[0].cookie, 0u);
  EXPECT_EQ(ev[0].cookie, ev[1].cookie);
}

TEST(InotifyTest, DeleteSelfAndIgnored) {
  TempDir dir;
  std::string path = dir.Join("f");
  ASSERT_TRUE(WriteFile(path, ""));
  FileDescriptor fd = NewInotify();
  int wd = inotify_add_watch(fd.get(), path.c_str(), IN_DELETE_SELF);
  ASSERT_THAT(wd, SyscallSucceeds());
  ASSERT_THAT(unlink(path.c_str()), SyscallSucceeds());
  std::vector<Event> ev = ReadEvents(fd.get());
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].mask, static_cast<uint32_t>(IN_DELETE_SELF));
  EXPECT_EQ(ev[1].mask, static_cast<uint32_t>(IN_IGNORED));
  EXPECT_EQ(ev[1].wd, wd);
  EXPECT_THAT(inotify_rm_watch(fd.get(), wd), SyscallFailsWithErrno(EINVAL));
}

TEST(InotifyTest, RmWatch) {
  TempDir dir;
  FileDescriptor fd = NewInotify();
  int wd = inotify_add_watch(fd.get(), dir.path().c_str(), IN_CREATE);
  ASSERT_THAT(wd, SyscallSucceeds());
  ASSERT_THAT(inotify_rm_watch(fd.get(), wd), SyscallSucceeds());
  ASSERT_TRUE(WriteFile(dir.Join("x"), ""));
  std::vector<Event> ev = ReadEvents(fd.get());
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].wd, wd);
  EXPECT_EQ(ev[0].mask, static_cast<uint32_t>(IN_IGNORED));
  EXPECT_THAT(inotify_rm_watch(fd.get(), wd), SyscallFailsWithErrno(EINVAL));
  // A new watch gets a new descriptor.
  EXPECT_THAT(inotify_add_watch(fd.get(), dir.path().c_str(), IN_CREATE),
              SyscallSucceedsWithValue(::testing::Ne(wd)));
}

TEST(InotifyTest, OneShot) {
  TempDir dir;
  FileDescriptor fd = NewInotify();
  int wd = inotify_add_watch(fd.get(), dir.path().c_str(),
                             IN_CREATE | IN_ONESHOT);
  ASSERT_THAT(wd, SyscallSucceeds());
  ASSERT_TRUE(WriteFile(dir.Join("x"), ""));
  ASSERT_TRUE(WriteFile(dir.Join("y"), ""));
  std::vector<Event> ev = ReadEvents(fd.get());
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].mask, static_cast<uint32_t>(IN_CREATE));
  EXPECT_EQ(ev[0].name, "x");
  EXPECT_EQ(ev[1].mask, static_cast<uint32_t>(IN_IGNORED));
  EXPECT_THAT(inotify_rm_watch(fd.get(), wd), SyscallFailsWithErrno(EINVAL));
}

TEST(InotifyTest, ExclUnlink) {
  TempDir dir;
  std::string path = dir.Join("f");
  ASSERT_TRUE(WriteFile(path, ""));
  FileDescriptor with = NewInotify(), without = NewInotify();
  ASSERT_THAT(inotify_add_watch(with.get(), dir.path().c_str(),
                                IN_MODIFY | IN_EXCL_UNLINK),
              SyscallSucceeds());
  ASSERT_THAT(inotify_add_watch(without.get(), dir.path().c_str(), IN_MODIFY),
              SyscallSucceeds());
  FileDescriptor f(open(path.c_str(), O_WRONLY));
  ASSERT_THAT(f.get(), SyscallSucceeds());
  ASSERT_THAT(unlink(path.c_str()), SyscallSucceeds());
  ASSERT_THAT(write(f.get(), "x", 1), SyscallSucceedsWithValue(1));
  EXPECT_TRUE(ReadEvents(with.get()).empty());
  std::vector<Event> ev = ReadEvents(without.get());
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].name, "f");
}

TEST(InotifyTest, DontFollow) {
  TempDir dir;
  ASSERT_TRUE(WriteFile(dir.Join("target"), ""));
  ASSERT_THAT(symlink("target", dir.Join("link").c_str()), SyscallSucceeds());
  FileDescriptor fd = NewInotify();
  int on_target = inotify_add_watch(fd.get(), dir.Join("target").c_str(),
                                    IN_ATTRIB);
  int via_link = inotify_add_watch(fd.get(), dir.Join("link").c_str(),
                                   IN_ATTRIB);
  int on_link = inotify_add_watch(fd.get(), dir.Join("link").c_str(),
                                  IN_ATTRIB | IN_DONT_FOLLOW);
  ASSERT_THAT(on_target, SyscallSucceeds());
  EXPECT_EQ(via_link, on_target);
  ASSERT_THAT(on_link, SyscallSucceeds());
  EXPECT_NE(on_link, on_target);
}

TEST(InotifyTest, PollAndEpoll) {
  TempDir dir;
  FileDescriptor fd = NewInotify();
  ASSERT_THAT(inotify_add_watch(fd.get(), dir.path().c_str(), IN_CREATE),
              SyscallSucceeds());
  struct pollfd p = {fd.get(), POLLIN, 0};
  EXPECT_THAT(poll(&p, 1, 0), SyscallSucceedsWithValue(0));
  FileDescriptor ep(epoll_create1(0));
  ASSERT_THAT(ep.get(), SyscallSucceeds());
  struct epoll_event ev = {};
  ev.events = EPOLLIN;
  ASSERT_THAT(epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd.get(), &ev),
              SyscallSucceeds());
  std::thread creator([&] {
    usleep(20000);
    WriteFile(dir.Join("x"), "");
  });
  struct epoll_event out;
  EXPECT_THAT(epoll_wait(ep.get(), &out, 1, 10000), SyscallSucceedsWithValue(1));
  creator.join();
  EXPECT_THAT(poll(&p, 1, 0), SyscallSucceedsWithValue(1));
  EXPECT_EQ(p.revents, POLLIN);
}

TEST(InotifyTest, BlockingRead) {
  TempDir dir;
  FileDescriptor fd(inotify_init());
  ASSERT_THAT(fd.get(), SyscallSucceeds());
  ASSERT_THAT(inotify_add_watch(fd.get(), dir.path().c_str(), IN_CREATE),
              SyscallSucceeds());
  std::thread creator([&] {
    usleep(20000);
    WriteFile(dir.Join("late"), "");
  });
  char buf[256];
  ssize_t n = read(fd.get(), buf, sizeof(buf));
  creator.join();
  ASSERT_THAT(n, SyscallSucceeds());
  struct inotify_event* e = reinterpret_cast<struct inotify_event*>(buf);
  EXPECT_EQ(e->mask, static_cast<uint32_t>(IN_CREATE));
  EXPECT_STREQ(e->name, "late");
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
