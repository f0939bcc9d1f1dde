// inotify and the life of files: hard links (one watch per inode, IN_ATTRIB
// for link count changes), IN_UNMOUNT when a watched file's filesystem goes
// away, and the watch lines of /proc/pid/fdinfo.

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/file_descriptor.h"
#include "test/util/fs_util.h"
#include "test/util/syscall_matchers.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

struct Event {
  int wd;
  uint32_t mask;
  std::string name;
  bool operator==(const Event& o) const {
    return wd == o.wd && mask == o.mask && name == o.name;
  }
};

std::ostream& operator<<(std::ostream& os, const Event& e) {
  char mask[16];
  snprintf(mask, sizeof(mask), "%#x", e.mask);
  return os << "{" << e.wd << ", " << mask << ", \"" << e.name << "\"}";
}

std::vector<Event> ReadEvents(int fd) {
  std::vector<Event> out;
  char buf[4096] __attribute__((aligned(8)));
  ssize_t n = read(fd, buf, sizeof(buf));
  if (n < 0) {
    EXPECT_EQ(errno, EAGAIN);
    return out;
  }
  for (ssize_t off = 0; off < n;) {
    auto* e = reinterpret_cast<struct inotify_event*>(buf + off);
    out.push_back({e->wd, e->mask, e->len ? std::string(e->name) : ""});
    off += sizeof(struct inotify_event) + e->len;
  }
  return out;
}

FileDescriptor NewInotify() {
  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  EXPECT_THAT(fd, SyscallSucceeds());
  return FileDescriptor(fd);
}

using ::testing::ElementsAre;

// Two names of one file are one inode: one watch, which hears of each link
// count change, and of the file's end only with its last name.
TEST(InotifyLinksTest, HardLinksShareOneWatch) {
  TempDir dir;
  std::string a = dir.Join("a"), b = dir.Join("b");
  ASSERT_TRUE(WriteFile(a, "x"));
  ASSERT_THAT(link(a.c_str(), b.c_str()), SyscallSucceeds());
  FileDescriptor fd = NewInotify();
  const uint32_t mask = IN_ATTRIB | IN_DELETE_SELF;
  int wd = inotify_add_watch(fd.get(), a.c_str(), mask);
  ASSERT_THAT(wd, SyscallSucceeds());
  EXPECT_THAT(inotify_add_watch(fd.get(), b.c_str(), mask),
              SyscallSucceedsWithValue(wd));

  ASSERT_THAT(unlink(b.c_str()), SyscallSucceeds());
  EXPECT_THAT(ReadEvents(fd.get()), ElementsAre(Event{wd, IN_ATTRIB, ""}));
  ASSERT_THAT(unlink(a.c_str()), SyscallSucceeds());
  EXPECT_THAT(ReadEvents(fd.get()),
              ElementsAre(Event{wd, IN_ATTRIB, ""}, Event{wd, IN_DELETE_SELF, ""},
                          Event{wd, IN_IGNORED, ""}));
}

// link(2) changes the link count (IN_ATTRIB to the file's watches); the
// directory hears only of the names, never of a child's link count or
// IN_DELETE_SELF.
TEST(InotifyLinksTest, LinkCountEventsGoToTheFileOnly) {
  TempDir dir;
  std::string a = dir.Join("a"), c = dir.Join("c");
  ASSERT_TRUE(WriteFile(a, "x"));
  FileDescriptor fd = NewInotify();
  int dwd = inotify_add_watch(fd.get(), dir.path().c_str(), IN_ALL_EVENTS);
  ASSERT_THAT(dwd, SyscallSucceeds());
  int fwd = inotify_add_watch(fd.get(), a.c_str(), IN_ATTRIB | IN_DELETE_SELF);
  ASSERT_THAT(fwd, SyscallSucceeds());

  ASSERT_THAT(link(a.c_str(), c.c_str()), SyscallSucceeds());
  EXPECT_THAT(ReadEvents(fd.get()),
              ElementsAre(Event{fwd, IN_ATTRIB, ""}, Event{dwd, IN_CREATE, "c"}));
  ASSERT_THAT(unlink(c.c_str()), SyscallSucceeds());
  EXPECT_THAT(ReadEvents(fd.get()),
              ElementsAre(Event{fwd, IN_ATTRIB, ""}, Event{dwd, IN_DELETE, "c"}));
  ASSERT_THAT(unlink(a.c_str()), SyscallSucceeds());
  // The file's own events come first (d_delete_notify).
  EXPECT_THAT(ReadEvents(fd.get()),
              ElementsAre(Event{fwd, IN_ATTRIB, ""},
                          Event{fwd, IN_DELETE_SELF, ""},
                          Event{fwd, IN_IGNORED, ""}, Event{dwd, IN_DELETE, "a"}));
}

// A rename over one name of a file with another is a link count change.
TEST(InotifyLinksTest, RenameOverAHardLink) {
  TempDir dir;
  std::string a = dir.Join("a"), a2 = dir.Join("a2"), b = dir.Join("b");
  ASSERT_TRUE(WriteFile(a, "x"));
  ASSERT_TRUE(WriteFile(b, "y"));
  ASSERT_THAT(link(a.c_str(), a2.c_str()), SyscallSucceeds());
  FileDescriptor fd = NewInotify();
  int wd = inotify_add_watch(fd.get(), a.c_str(), IN_ATTRIB | IN_DELETE_SELF);
  ASSERT_THAT(wd, SyscallSucceeds());
  ASSERT_THAT(rename(b.c_str(), a2.c_str()), SyscallSucceeds());
  EXPECT_THAT(ReadEvents(fd.get()), ElementsAre(Event{wd, IN_ATTRIB, ""}));
  struct stat st;
  ASSERT_THAT(stat(a.c_str(), &st), SyscallSucceeds());
  EXPECT_EQ(st.st_nlink, 1u);
}

// The lines after the common ones, one per watch, newest first.
TEST(InotifyFdinfoTest, WatchLines) {
  TempDir dir;
  std::string f = dir.Join("f");
  ASSERT_TRUE(WriteFile(f, ""));
  FileDescriptor fd = NewInotify();
  int dwd = inotify_add_watch(fd.get(), dir.path().c_str(), IN_CREATE);
  ASSERT_THAT(dwd, SyscallSucceeds());
  int fwd = inotify_add_watch(fd.get(), f.c_str(),
                              IN_MODIFY | IN_ONESHOT | IN_EXCL_UNLINK);
  ASSERT_THAT(fwd, SyscallSucceeds());

  std::string info =
      ReadFile("/proc/self/fdinfo/" + std::to_string(fd.get()));
  std::vector<std::string> lines;
  std::istringstream in(info);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("inotify ", 0) == 0) lines.push_back(line);
  }
  ASSERT_EQ(lines.size(), 2u) << info;
  auto expect = [](const std::string& path, int wd, uint32_t mask) {
    struct stat st;
    EXPECT_THAT(stat(path.c_str(), &st), SyscallSucceeds());
    char head[200];
    snprintf(head, sizeof(head),
             "inotify wd:%x ino:%lx sdev:%x mask:%x ignored_mask:0 ", wd,
             static_cast<unsigned long>(st.st_ino),
             (major(st.st_dev) << 20) | minor(st.st_dev), mask);
    return std::string(head);
  };
  EXPECT_THAT(lines[0], ::testing::StartsWith(expect(
                            f, fwd, IN_MODIFY | IN_ONESHOT | IN_EXCL_UNLINK)));
  EXPECT_THAT(lines[1],
              ::testing::StartsWith(expect(dir.path(), dwd, IN_CREATE)));
  for (const auto& line : lines) {
    EXPECT_THAT(line, ::testing::ContainsRegex(
                          " fhandle-bytes:[0-9a-f]+ fhandle-type:[0-9a-f]+ "
                          "f_handle:[0-9a-f]+$"));
  }
}

// The end of a filesystem ends the watches on its files: IN_UNMOUNT, then
// IN_IGNORED, for each.
TEST(InotifyUnmountTest, UnmountEndsWatches) {
  if (!IsRunningOnSandbox()) {
    // Natively the mount stays in a namespace of the test's own.
    ASSERT_THAT(unshare(CLONE_NEWNS), SyscallSucceeds());
    ASSERT_THAT(mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr),
                SyscallSucceeds());
  }
  TempDir dir;
  std::string mnt = dir.Join("mnt");
  ASSERT_THAT(mkdir(mnt.c_str(), 0755), SyscallSucceeds());
  ASSERT_THAT(mount("none", mnt.c_str(), "tmpfs", 0, nullptr),
              SyscallSucceeds());
  ASSERT_TRUE(WriteFile(mnt + "/f", "x"));
  FileDescriptor fd = NewInotify();
  int rwd = inotify_add_watch(fd.get(), mnt.c_str(), IN_CREATE);
  ASSERT_THAT(rwd, SyscallSucceeds());
  int fwd = inotify_add_watch(fd.get(), (mnt + "/f").c_str(), IN_MODIFY);
  ASSERT_THAT(fwd, SyscallSucceeds());
  // A watch on the mount point's own directory, below the mount, stays.
  int under = inotify_add_watch(fd.get(), dir.path().c_str(), IN_CREATE);
  ASSERT_THAT(under, SyscallSucceeds());

  ASSERT_THAT(umount(mnt.c_str()), SyscallSucceeds());
  std::vector<Event> events = ReadEvents(fd.get());
  for (int wd : {rwd, fwd}) {
    std::vector<uint32_t> masks;
    for (const Event& e : events) {
      if (e.wd == wd) masks.push_back(e.mask);
    }
    // A directory's IN_UNMOUNT comes with IN_ISDIR.
    uint32_t unmount = IN_UNMOUNT | (wd == rwd ? IN_ISDIR : 0);
    EXPECT_THAT(masks, ElementsAre(unmount, IN_IGNORED)) << "wd " << wd;
  }
  for (const Event& e : events) EXPECT_NE(e.wd, under);
  EXPECT_EQ(events.size(), 4u);
  // The removed watches are gone; the other still works.
  EXPECT_THAT(inotify_rm_watch(fd.get(), fwd), SyscallFailsWithErrno(EINVAL));
  ASSERT_TRUE(WriteFile(dir.Join("new"), ""));
  EXPECT_THAT(ReadEvents(fd.get()), ElementsAre(Event{under, IN_CREATE, "new"}));
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
