// setxattr(2), getxattr(2), listxattr(2), removexattr(2) and their l* and
// f* forms, on tmpfs (user.*, trusted.* and security.*).

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/magic.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/fs_util.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

class XattrTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    file_ = dir_.Join("file");
    ASSERT_TRUE(WriteFile(file_, ""));
    struct statfs sf;
    ASSERT_THAT(statfs(dir_.path().c_str(), &sf), SyscallSucceeds());
    // The host's test directory may not be a tmpfs; user xattrs need one
    // (or ext4) either way. Probe.
    if (setxattr(file_.c_str(), "user.probe", "", 0, 0) != 0) {
      GTEST_SKIP() << "no user xattrs where the test runs: " << strerror(errno);
    }
    ASSERT_THAT(removexattr(file_.c_str(), "user.probe"), SyscallSucceeds());
  }
  TempDir dir_;
  std::string file_;
};

TEST_F(XattrTest, SetGetListRemove) {
  ASSERT_THAT(setxattr(file_.c_str(), "user.a", "value", 5, 0), SyscallSucceeds());
  char buf[64] = {};
  EXPECT_THAT(getxattr(file_.c_str(), "user.a", buf, sizeof(buf)),
              SyscallSucceedsWithValue(5));
  EXPECT_STREQ(buf, "value");
  // Size 0 asks for the length.
  EXPECT_THAT(getxattr(file_.c_str(), "user.a", nullptr, 0),
              SyscallSucceedsWithValue(5));
  EXPECT_THAT(getxattr(file_.c_str(), "user.a", buf, 2),
              SyscallFailsWithErrno(ERANGE));
  ASSERT_THAT(setxattr(file_.c_str(), "user.b", "", 0, 0), SyscallSucceeds());
  char list[64] = {};
  long n = listxattr(file_.c_str(), list, sizeof(list));
  ASSERT_THAT(n, SyscallSucceeds());
  std::string names(list, n);
  EXPECT_NE(names.find(std::string("user.a\0", 7)), std::string::npos);
  EXPECT_NE(names.find(std::string("user.b\0", 7)), std::string::npos);
  EXPECT_THAT(listxattr(file_.c_str(), nullptr, 0), SyscallSucceedsWithValue(n));
  EXPECT_THAT(listxattr(file_.c_str(), list, 3), SyscallFailsWithErrno(ERANGE));
  ASSERT_THAT(removexattr(file_.c_str(), "user.a"), SyscallSucceeds());
  EXPECT_THAT(getxattr(file_.c_str(), "user.a", buf, sizeof(buf)),
              SyscallFailsWithErrno(ENODATA));
  EXPECT_THAT(removexattr(file_.c_str(), "user.a"), SyscallFailsWithErrno(ENODATA));
}

TEST_F(XattrTest, CreateAndReplaceFlags) {
  EXPECT_THAT(setxattr(file_.c_str(), "user.x", "1", 1, XATTR_REPLACE),
              SyscallFailsWithErrno(ENODATA));
  ASSERT_THAT(setxattr(file_.c_str(), "user.x", "1", 1, XATTR_CREATE),
              SyscallSucceeds());
  EXPECT_THAT(setxattr(file_.c_str(), "user.x", "2", 1, XATTR_CREATE),
              SyscallFailsWithErrno(EEXIST));
  ASSERT_THAT(setxattr(file_.c_str(), "user.x", "3", 1, XATTR_REPLACE),
              SyscallSucceeds());
  EXPECT_THAT(setxattr(file_.c_str(), "user.x", "3", 1, 4),
              SyscallFailsWithErrno(EINVAL));
}

TEST_F(XattrTest, BadNames) {
  EXPECT_THAT(setxattr(file_.c_str(), "", "1", 1, 0), SyscallFailsWithErrno(ERANGE));
  std::string longname = "user." + std::string(300, 'n');
  EXPECT_THAT(setxattr(file_.c_str(), longname.c_str(), "1", 1, 0),
              SyscallFailsWithErrno(ERANGE));
  EXPECT_THAT(setxattr(file_.c_str(), "nonamespace", "1", 1, 0),
              SyscallFailsWithErrno(EOPNOTSUPP));
  std::string big(1 << 17, 'v');
  EXPECT_THAT(setxattr(file_.c_str(), "user.big", big.data(), big.size(), 0),
              SyscallFailsWithErrno(E2BIG));
  EXPECT_THAT(getxattr(dir_.Join("nope").c_str(), "user.a", nullptr, 0),
              SyscallFailsWithErrno(ENOENT));
}

TEST_F(XattrTest, FdAndNoFollowForms) {
  FileDescriptor fd(open(file_.c_str(), O_RDWR));
  ASSERT_THAT(fsetxattr(fd.get(), "user.f", "fd", 2, 0), SyscallSucceeds());
  char buf[8] = {};
  EXPECT_THAT(fgetxattr(fd.get(), "user.f", buf, sizeof(buf)),
              SyscallSucceedsWithValue(2));
  EXPECT_THAT(flistxattr(fd.get(), nullptr, 0), SyscallSucceedsWithValue(7));
  ASSERT_THAT(fremovexattr(fd.get(), "user.f"), SyscallSucceeds());
  std::string l = dir_.Join("l");
  ASSERT_THAT(symlink("file", l.c_str()), SyscallSucceeds());
  // user.* attributes are for regular files and directories only.
  EXPECT_THAT(lsetxattr(l.c_str(), "user.l", "1", 1, 0),
              SyscallFailsWithErrno(EPERM));
  ASSERT_THAT(setxattr(l.c_str(), "user.viafollow", "1", 1, 0), SyscallSucceeds());
  EXPECT_THAT(getxattr(file_.c_str(), "user.viafollow", buf, sizeof(buf)),
              SyscallSucceedsWithValue(1));
  EXPECT_THAT(lgetxattr(l.c_str(), "user.viafollow", buf, sizeof(buf)),
              SyscallFailsWithErrno(ENODATA));
  FileDescriptor p(open(file_.c_str(), O_PATH));
  EXPECT_THAT(fgetxattr(p.get(), "user.f", buf, sizeof(buf)),
              SyscallFailsWithErrno(EBADF));
}

TEST_F(XattrTest, TrustedNeedsCapSysAdmin) {
  struct statfs sf;
  ASSERT_THAT(statfs(dir_.path().c_str(), &sf), SyscallSucceeds());
  ASSERT_THAT(setxattr(file_.c_str(), "trusted.t", "1", 1, 0), SyscallSucceeds());
  char buf[4];
  EXPECT_THAT(getxattr(file_.c_str(), "trusted.t", buf, sizeof(buf)),
              SyscallSucceedsWithValue(1));
}

TEST_F(XattrTest, NonOwnerCannotWrite) {
  TempDir pub("/tmp");
  ASSERT_THAT(chmod(pub.path().c_str(), 0755), SyscallSucceeds());
  std::string f = pub.Join("f");
  ASSERT_TRUE(WriteFile(f, ""));
  ASSERT_THAT(chmod(f.c_str(), 0644), SyscallSucceeds());
  if (setxattr(f.c_str(), "user.v", "1", 1, 0) != 0) GTEST_SKIP();
  EXPECT_EQ(RunAsNobody([&] {
              char b[4];
              return getxattr(f.c_str(), "user.v", b, 4) == 1 ? 0 : errno;
            }),
            0);
  EXPECT_EQ(RunAsNobody([&] {
              return setxattr(f.c_str(), "user.v", "2", 1, 0) ? errno : 0;
            }),
            EACCES);
  EXPECT_EQ(RunAsNobody([&] {
              char b[4];
              return getxattr(f.c_str(), "trusted.x", b, 4) < 0 ? errno : 0;
            }),
            ENODATA);
}


// RunWithoutDacCapabilities runs fn in a child process that keeps its ids
// and CAP_SYS_ADMIN but loses CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH and
// CAP_FOWNER, so that file permissions apply to it; returns fn's result.
int RunWithoutDacCapabilities(const std::function<int()>& fn) {
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2] = {};
    if (syscall(SYS_capget, &hdr, data) != 0) _exit(126);
    uint32_t drop = (1u << CAP_DAC_OVERRIDE) | (1u << CAP_DAC_READ_SEARCH) |
                    (1u << CAP_FOWNER);
    data[0].effective &= ~drop;
    if (syscall(SYS_capset, &hdr, data) != 0) _exit(126);
    _exit(fn());
  }
  int status;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

// With no LSM, security.* attributes are the capability module's: anyone
// reads them, and writing one needs CAP_SYS_ADMIN, not file permission.
TEST_F(XattrTest, SecurityNeedsCapSysAdminNotWritePermission) {
  TempDir pub("/tmp");
  ASSERT_THAT(chmod(pub.path().c_str(), 0755), SyscallSucceeds());
  std::string f = pub.Join("f");
  ASSERT_TRUE(WriteFile(f, ""));
  if (setxattr(f.c_str(), "security.s", "1", 1, 0) != 0 ||
      setxattr(f.c_str(), "user.probe", "", 0, 0) != 0) {
    GTEST_SKIP() << "no security and user xattrs here: " << strerror(errno);
  }
  ASSERT_THAT(chmod(f.c_str(), 0666), SyscallSucceeds());
  EXPECT_EQ(RunAsNobody([&] {
              char b[4];
              return getxattr(f.c_str(), "security.s", b, 4) == 1 ? 0 : errno;
            }),
            0);
  EXPECT_EQ(RunAsNobody([&] {
              return setxattr(f.c_str(), "security.s", "2", 1, 0) ? errno : 0;
            }),
            EPERM);
  EXPECT_EQ(RunAsNobody([&] {
              return removexattr(f.c_str(), "security.s") ? errno : 0;
            }),
            EPERM);
  ASSERT_THAT(chmod(f.c_str(), 0444), SyscallSucceeds());
  EXPECT_EQ(RunWithoutDacCapabilities([&] {
              // The permission check that does apply here.
              if (setxattr(f.c_str(), "user.u", "1", 1, 0) == 0) return 1;
              if (errno != EACCES) return 2;
              if (setxattr(f.c_str(), "security.s", "3", 1, 0) != 0) return 3;
              return removexattr(f.c_str(), "security.s") ? 4 : 0;
            }),
            0);
}

// security.capability takes only a valid file capability header (revision 2
// in 20 bytes, or 3 in 24), and needs CAP_SETFCAP.
TEST_F(XattrTest, FileCapabilitiesAreChecked) {
  TempDir pub("/tmp");
  ASSERT_THAT(chmod(pub.path().c_str(), 0755), SyscallSucceeds());
  std::string f = pub.Join("f");
  ASSERT_TRUE(WriteFile(f, ""));
  if (setxattr(f.c_str(), "security.s", "1", 1, 0) != 0) {
    GTEST_SKIP() << "no security xattrs here: " << strerror(errno);
  }
  ASSERT_THAT(chmod(f.c_str(), 0666), SyscallSucceeds());
  uint32_t v2[5] = {0x02000000, 1u << CAP_NET_BIND_SERVICE, 0, 0, 0};
  EXPECT_THAT(setxattr(f.c_str(), "security.capability", "junk", 4, 0),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(setxattr(f.c_str(), "security.capability", v2, 16, 0),
              SyscallFailsWithErrno(EINVAL));
  uint32_t v3_sized_v2[6] = {0x02000000, 0, 0, 0, 0, 0};
  EXPECT_THAT(setxattr(f.c_str(), "security.capability", v3_sized_v2,
                       sizeof(v3_sized_v2), 0),
              SyscallFailsWithErrno(EINVAL));
  EXPECT_EQ(RunAsNobody([&] {
              return setxattr(f.c_str(), "security.capability", v2, sizeof(v2),
                              0)
                         ? errno
                         : 0;
            }),
            EPERM);
  ASSERT_THAT(setxattr(f.c_str(), "security.capability", v2, sizeof(v2), 0),
              SyscallSucceeds());
  uint32_t got[8] = {};
  ASSERT_THAT(getxattr(f.c_str(), "security.capability", got, sizeof(got)),
              SyscallSucceedsWithValue(sizeof(v2)));
  EXPECT_EQ(got[1], v2[1]);
  EXPECT_EQ(RunAsNobody([&] {
              return removexattr(f.c_str(), "security.capability") ? errno : 0;
            }),
            EPERM);
  EXPECT_THAT(removexattr(f.c_str(), "security.capability"), SyscallSucceeds());
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
