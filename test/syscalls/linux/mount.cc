// mount(2) and umount2(2): tmpfs and bind mounts, and how paths cross them.
//
// Natively the test runs in a mount namespace of its own (unshare), so that
// nothing it mounts is seen outside.

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/fs_util.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

class MountTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!IsRunningOnSandbox()) {
      ASSERT_THAT(unshare(CLONE_NEWNS), SyscallSucceeds());
      ASSERT_THAT(mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr),
                  SyscallSucceeds());
    }
  }
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    mnt_ = dir_.Join("mnt");
    ASSERT_THAT(mkdir(mnt_.c_str(), 0755), SyscallSucceeds());
  }
  TempDir dir_;
  std::string mnt_;
};

TEST_F(MountTest, TmpfsMountAndUnmount) {
  ASSERT_TRUE(WriteFile(mnt_ + "/under", "u"));
  ASSERT_THAT(mount("none", mnt_.c_str(), "tmpfs", 0, "mode=0700,size=1m"),
              SyscallSucceeds());
  struct statfs sf;
  ASSERT_THAT(statfs(mnt_.c_str(), &sf), SyscallSucceeds());
  EXPECT_EQ(sf.f_type, TMPFS_MAGIC);
  EXPECT_EQ(sf.f_blocks * sf.f_bsize, 1u << 20);
  struct stat st;
  ASSERT_THAT(stat(mnt_.c_str(), &st), SyscallSucceeds());
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  // The new filesystem hides what was there.
  EXPECT_FALSE(Exists(mnt_ + "/under"));
  ASSERT_TRUE(WriteFile(mnt_ + "/over", "o"));
  ASSERT_THAT(umount(mnt_.c_str()), SyscallSucceeds());
  EXPECT_TRUE(Exists(mnt_ + "/under"));
  EXPECT_FALSE(Exists(mnt_ + "/over"));
}

TEST_F(MountTest, DotDotLeavesTheMount) {
  ASSERT_THAT(mount("none", mnt_.c_str(), "tmpfs", 0, nullptr), SyscallSucceeds());
  ASSERT_TRUE(WriteFile(dir_.Join("beside"), "b"));
  EXPECT_EQ(ReadFile(mnt_ + "/../beside"), "b");
  struct stat a, b;
  ASSERT_THAT(stat((mnt_ + "/..").c_str(), &a), SyscallSucceeds());
  ASSERT_THAT(stat(dir_.path().c_str(), &b), SyscallSucceeds());
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(a.st_dev, b.st_dev);
  ASSERT_THAT(umount(mnt_.c_str()), SyscallSucceeds());
}

TEST_F(MountTest, CrossMountRenameAndLinkAreExdev) {
  ASSERT_THAT(mount("none", mnt_.c_str(), "tmpfs", 0, nullptr), SyscallSucceeds());
  std::string f = dir_.Join("f");
  ASSERT_TRUE(WriteFile(f, ""));
  EXPECT_THAT(rename(f.c_str(), (mnt_ + "/f").c_str()),
              SyscallFailsWithErrno(EXDEV));
  EXPECT_THAT(link(f.c_str(), (mnt_ + "/f").c_str()), SyscallFailsWithErrno(EXDEV));
  // A mount point cannot be removed or renamed.
  EXPECT_THAT(rmdir(mnt_.c_str()), SyscallFailsWithErrno(EBUSY));
  EXPECT_THAT(rename(mnt_.c_str(), dir_.Join("m2").c_str()),
              SyscallFailsWithErrno(EBUSY));
  ASSERT_THAT(umount(mnt_.c_str()), SyscallSucceeds());
}

TEST_F(MountTest, BusyMountAndLazyUnmount) {
  ASSERT_THAT(mount("none", mnt_.c_str(), "tmpfs", 0, nullptr), SyscallSucceeds());
  ASSERT_TRUE(WriteFile(mnt_ + "/f", "still here"));
  FileDescriptor fd(open((mnt_ + "/f").c_str(), O_RDONLY));
  ASSERT_THAT(fd.get(), SyscallSucceeds());
  EXPECT_THAT(umount(mnt_.c_str()), SyscallFailsWithErrno(EBUSY));
  ASSERT_THAT(umount2(mnt_.c_str(), MNT_DETACH), SyscallSucceeds());
  EXPECT_FALSE(Exists(mnt_ + "/f"));
  char buf[16] = {};
  EXPECT_THAT(read(fd.get(), buf, sizeof(buf)), SyscallSucceedsWithValue(10));
}

TEST_F(MountTest, BindMount) {
  std::string src = dir_.Join("src");
  ASSERT_THAT(mkdir(src.c_str(), 0755), SyscallSucceeds());
  ASSERT_TRUE(WriteFile(src + "/f", "bound"));
  ASSERT_THAT(mount(src.c_str(), mnt_.c_str(), nullptr, MS_BIND, nullptr),
              SyscallSucceeds());
  EXPECT_EQ(ReadFile(mnt_ + "/f"), "bound");
  // Same files through either path.
  ASSERT_TRUE(WriteFile(mnt_ + "/g", "new"));
  EXPECT_EQ(ReadFile(src + "/g"), "new");
  struct stat a, b;
  ASSERT_THAT(stat((mnt_ + "/f").c_str(), &a), SyscallSucceeds());
  ASSERT_THAT(stat((src + "/f").c_str(), &b), SyscallSucceeds());
  EXPECT_EQ(a.st_ino, b.st_ino);
  // Renames between the two paths cross mounts.
  EXPECT_THAT(rename((src + "/f").c_str(), (mnt_ + "/h").c_str()),
              SyscallFailsWithErrno(EXDEV));
  ASSERT_THAT(umount(mnt_.c_str()), SyscallSucceeds());
  EXPECT_FALSE(Exists(mnt_ + "/f"));
}

TEST_F(MountTest, BindMountOfFile) {
  std::string a = dir_.Join("a"), b = dir_.Join("b");
  ASSERT_TRUE(WriteFile(a, "A"));
  ASSERT_TRUE(WriteFile(b, "B"));
  ASSERT_THAT(mount(a.c_str(), b.c_str(), nullptr, MS_BIND, nullptr),
              SyscallSucceeds());
  EXPECT_EQ(ReadFile(b), "A");
  EXPECT_THAT(mount(a.c_str(), mnt_.c_str(), nullptr, MS_BIND, nullptr),
              SyscallFailsWithErrno(ENOTDIR));
  ASSERT_THAT(umount(b.c_str()), SyscallSucceeds());
  EXPECT_EQ(ReadFile(b), "B");
}

TEST_F(MountTest, RecursiveBindCarriesSubmounts) {
  std::string src = dir_.Join("src");
  ASSERT_THAT(mkdir(src.c_str(), 0755), SyscallSucceeds());
  ASSERT_THAT(mkdir((src + "/sub").c_str(), 0755), SyscallSucceeds());
  ASSERT_THAT(mount("none", (src + "/sub").c_str(), "tmpfs", 0, nullptr),
              SyscallSucceeds());
  ASSERT_TRUE(WriteFile(src + "/sub/in", "deep"));
  ASSERT_THAT(mount(src.c_str(), mnt_.c_str(), nullptr, MS_BIND | MS_REC, nullptr),
              SyscallSucceeds());
  EXPECT_EQ(ReadFile(mnt_ + "/sub/in"), "deep");
  ASSERT_THAT(umount2(mnt_.c_str(), MNT_DETACH), SyscallSucceeds());
  std::string other = dir_.Join("other");
  ASSERT_THAT(mkdir(other.c_str(), 0755), SyscallSucceeds());
  ASSERT_THAT(mount(src.c_str(), other.c_str(), nullptr, MS_BIND, nullptr),
              SyscallSucceeds());
  // Without MS_REC the submount stays behind.
  EXPECT_FALSE(Exists(other + "/sub/in"));
  ASSERT_THAT(umount(other.c_str()), SyscallSucceeds());
  ASSERT_THAT(umount((src + "/sub").c_str()), SyscallSucceeds());
}

TEST_F(MountTest, ReadOnlyRemount) {
  ASSERT_THAT(mount("none", mnt_.c_str(), "tmpfs", 0, nullptr), SyscallSucceeds());
  ASSERT_TRUE(WriteFile(mnt_ + "/f", "x"));
  ASSERT_THAT(mount(nullptr, mnt_.c_str(), nullptr,
                    MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr),
              SyscallSucceeds());
  EXPECT_THAT(open((mnt_ + "/g").c_str(), O_CREAT | O_WRONLY, 0644),
              SyscallFailsWithErrno(EROFS));
  EXPECT_THAT(open((mnt_ + "/f").c_str(), O_WRONLY), SyscallFailsWithErrno(EROFS));
  EXPECT_THAT(mkdir((mnt_ + "/d").c_str(), 0755), SyscallFailsWithErrno(EROFS));
  EXPECT_THAT(mkdir((mnt_ + "/f").c_str(), 0755), SyscallFailsWithErrno(EEXIST));
  EXPECT_THAT(unlink((mnt_ + "/f").c_str()), SyscallFailsWithErrno(EROFS));
  EXPECT_THAT(chmod((mnt_ + "/f").c_str(), 0600), SyscallFailsWithErrno(EROFS));
  EXPECT_THAT(access((mnt_ + "/f").c_str(), W_OK), SyscallFailsWithErrno(EROFS));
  EXPECT_EQ(ReadFile(mnt_ + "/f"), "x");
  struct statfs sf;
  ASSERT_THAT(statfs(mnt_.c_str(), &sf), SyscallSucceeds());
  EXPECT_TRUE(sf.f_flags & ST_RDONLY);
  ASSERT_THAT(umount(mnt_.c_str()), SyscallSucceeds());
}

TEST_F(MountTest, MountOverMountStacks) {
  ASSERT_THAT(mount("none", mnt_.c_str(), "tmpfs", 0, nullptr), SyscallSucceeds());
  ASSERT_TRUE(WriteFile(mnt_ + "/first", ""));
  ASSERT_THAT(mount("none", mnt_.c_str(), "tmpfs", 0, nullptr), SyscallSucceeds());
  EXPECT_FALSE(Exists(mnt_ + "/first"));
  ASSERT_THAT(umount(mnt_.c_str()), SyscallSucceeds());
  EXPECT_TRUE(Exists(mnt_ + "/first"));
  ASSERT_THAT(umount(mnt_.c_str()), SyscallSucceeds());
}

TEST_F(MountTest, Errors) {
  std::string f = dir_.Join("f");
  ASSERT_TRUE(WriteFile(f, ""));
  EXPECT_THAT(mount("none", f.c_str(), "tmpfs", 0, nullptr),
              SyscallFailsWithErrno(ENOTDIR));
  EXPECT_THAT(mount("none", mnt_.c_str(), "nosuchfs", 0, nullptr),
              SyscallFailsWithErrno(ENODEV));
  EXPECT_THAT(mount("none", dir_.Join("nope").c_str(), "tmpfs", 0, nullptr),
              SyscallFailsWithErrno(ENOENT));
  EXPECT_THAT(mount("none", mnt_.c_str(), "tmpfs", 0, "bogus=1"),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(mount(dir_.Join("nope").c_str(), mnt_.c_str(), nullptr, MS_BIND,
                    nullptr),
              SyscallFailsWithErrno(ENOENT));
  EXPECT_THAT(umount(mnt_.c_str()), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(umount(dir_.Join("nope").c_str()), SyscallFailsWithErrno(ENOENT));
  EXPECT_THAT(umount2(mnt_.c_str(), 0x100), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(umount2(mnt_.c_str(), MNT_EXPIRE | MNT_DETACH),
              SyscallFailsWithErrno(EINVAL));
}

TEST_F(MountTest, NonRootCannotMount) {
  TempDir pub("/tmp");
  ASSERT_THAT(chmod(pub.path().c_str(), 0755), SyscallSucceeds());
  std::string m = pub.path();
  EXPECT_EQ(RunAsNobody([&] {
              return mount("none", m.c_str(), "tmpfs", 0, nullptr) ? errno : 0;
            }),
            EPERM);
}

// A tmpfs full to its size limit refuses growth with ENOSPC at once, however
// large the request (the sentry must not build per-page state for it first).
TEST_F(MountTest, TmpfsSizeLimitRefusesHugeAllocations) {
  ASSERT_THAT(mount("none", mnt_.c_str(), "tmpfs", 0, "size=1m"),
              SyscallSucceeds());
  const std::string f = mnt_ + "/f";
  int fd = open(f.c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_THAT(fd, SyscallSucceeds());
  EXPECT_THAT(fallocate(fd, 0, 0, 1LL << 40), SyscallFailsWithErrno(ENOSPC));
  EXPECT_THAT(fallocate(fd, 0, 1LL << 50, 1LL << 40),
              SyscallFailsWithErrno(ENOSPC));
  EXPECT_THAT(fallocate(fd, 0, 0, 2 << 20), SyscallFailsWithErrno(ENOSPC));
  // What fits still does.
  EXPECT_THAT(fallocate(fd, 0, 0, 64 << 10), SyscallSucceeds());
  // A sparse file far beyond the limit costs nothing until written.
  EXPECT_THAT(ftruncate(fd, 1LL << 40), SyscallSucceeds());
  close(fd);
  ASSERT_THAT(umount(mnt_.c_str()), SyscallSucceeds());
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
