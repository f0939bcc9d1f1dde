// The hidepid= and gid= mount options of proc: which processes a task that
// may not inspect them can see (fs/proc/base.c has_pid_permissions).

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <set>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/fs_util.h"
#include "test/util/syscall_matchers.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

constexpr gid_t kNobody = 65534;
constexpr gid_t kExempt = 4242;

// RunAsNobody runs fn in a child that has become uid/gid 65534 with the
// given supplementary groups, in the working directory dir (entered first:
// the test's temporary directory may be closed to others natively);
// returns fn's result (0 for success) or 100+ when the child could not
// drop privileges.
int RunAsNobody(const std::string& dir, const std::function<int()>& fn,
                std::vector<gid_t> groups = {}) {
  pid_t pid = fork();
  if (pid == 0) {
    if (chdir(dir.c_str()) != 0) _exit(100);
    if (setgroups(groups.size(), groups.data()) != 0) _exit(101);
    if (setresgid(kNobody, kNobody, kNobody) != 0) _exit(102);
    if (setresuid(kNobody, kNobody, kNobody) != 0) _exit(103);
    _exit(fn());
  }
  if (pid < 0) return 104;
  int status;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return 105;
  return WEXITSTATUS(status);
}

std::set<std::string> List(const std::string& dir) {
  std::set<std::string> out;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (struct dirent* e = readdir(d)) out.insert(e->d_name);
  closedir(d);
  return out;
}

class ProcHidepidTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!IsRunningOnSandbox()) {
      // Natively the mounts stay in a namespace of the test's own.
      ASSERT_THAT(unshare(CLONE_NEWNS), SyscallSucceeds());
      ASSERT_THAT(mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr),
                  SyscallSucceeds());
    }
  }
  void SetUp() override {
    mnt_ = dir_.Join("proc");
    ASSERT_THAT(mkdir(mnt_.c_str(), 0755), SyscallSucceeds());
    // The child must be able to reach the mount point.
    ASSERT_THAT(chmod(dir_.path().c_str(), 0755), SyscallSucceeds());
    me_ = std::to_string(getpid());
  }
  void TearDown() override { umount2(mnt_.c_str(), MNT_DETACH); }
  void Mount(const char* opts) {
    ASSERT_THAT(mount("proc", mnt_.c_str(), "proc", 0, opts),
                SyscallSucceeds());
  }
  TempDir dir_;
  std::string mnt_;
  std::string me_;  // the test process, root: others may not inspect it.
};

TEST_F(ProcHidepidTest, Invisible) {
  Mount("hidepid=invisible");
  std::string mnt = ".", me = me_;
  // Root itself sees everything.
  struct stat st;
  ASSERT_THAT(stat((mnt_ + "/" + me).c_str(), &st), SyscallSucceeds());
  EXPECT_EQ(RunAsNobody(mnt_, [&] {
              struct stat st;
              if (stat((mnt + "/" + me).c_str(), &st) == 0 || errno != ENOENT) {
                return 1;
              }
              if (open((mnt + "/" + me + "/status").c_str(), O_RDONLY) >= 0 ||
                  errno != ENOENT) {
                return 2;
              }
              auto names = List(mnt);
              if (names.count(me)) return 3;
              // Its own directory stays.
              std::string own = std::to_string(getpid());
              if (!names.count(own)) return 4;
              if (stat((mnt + "/self/status").c_str(), &st) != 0) return 5;
              return 0;
            }),
            0);
}

TEST_F(ProcHidepidTest, NoAccess) {
  Mount("hidepid=1");
  std::string mnt = ".", me = me_;
  EXPECT_EQ(RunAsNobody(mnt_, [&] {
              struct stat st;
              if (stat((mnt + "/" + me).c_str(), &st) != 0) return 1;
              if (!List(mnt).count(me)) return 2;
              if (open((mnt + "/" + me + "/status").c_str(), O_RDONLY) >= 0 ||
                  errno != EPERM) {
                return 3;
              }
              if (open((mnt + "/" + me).c_str(), O_RDONLY | O_DIRECTORY) >= 0 ||
                  errno != EPERM) {
                return 4;
              }
              return 0;
            }),
            0);
}

TEST_F(ProcHidepidTest, GidExempts) {
  std::string opts = "hidepid=2,gid=" + std::to_string(kExempt);
  Mount(opts.c_str());
  std::string mnt = ".", me = me_;
  auto sees = [&] {
    struct stat st;
    if (stat((mnt + "/" + me + "/status").c_str(), &st) != 0) return 1;
    return List(mnt).count(me) ? 0 : 2;
  };
  EXPECT_EQ(RunAsNobody(mnt_, sees, {kExempt}), 0);
  EXPECT_EQ(RunAsNobody(mnt_, sees), 1);
}

TEST_F(ProcHidepidTest, PtraceableIgnoresGid) {
  std::string opts = "hidepid=ptraceable,gid=" + std::to_string(kExempt);
  Mount(opts.c_str());
  std::string mnt = ".", me = me_;
  EXPECT_EQ(RunAsNobody(
                mnt_,
                [&] {
                  struct stat st;
                  if (stat((mnt + "/" + me).c_str(), &st) == 0) return 1;
                  if (List(mnt).count(me)) return 2;
                  std::string own = std::to_string(getpid());
                  return stat((mnt + "/" + own + "/status").c_str(), &st) == 0
                             ? 0
                             : 3;
                },
                {kExempt}),
            0);
}

TEST_F(ProcHidepidTest, OffHidesNothing) {
  Mount("hidepid=off");
  std::string mnt = ".", me = me_;
  EXPECT_EQ(RunAsNobody(mnt_, [&] {
              struct stat st;
              std::string path = mnt + "/" + me + "/status";
              return stat(path.c_str(), &st) == 0 ? 0 : 1;
            }),
            0);
}

TEST_F(ProcHidepidTest, BadValues) {
  for (const char* opts : {"hidepid=3", "hidepid=5", "hidepid=secret",
                           "gid=abc", "gid=-1"}) {
    EXPECT_THAT(mount("proc", mnt_.c_str(), "proc", 0, opts),
                SyscallFailsWithErrno(EINVAL))
        << opts;
  }
}

TEST_F(ProcHidepidTest, MountinfoShowsOptions) {
  std::string opts = "hidepid=2,gid=" + std::to_string(kExempt);
  Mount(opts.c_str());
  std::string info = ReadFile("/proc/self/mountinfo");
  bool found = false;
  for (size_t pos = 0; pos < info.size();) {
    size_t end = info.find('\n', pos);
    std::string line = info.substr(pos, end - pos);
    pos = end == std::string::npos ? info.size() : end + 1;
    if (line.find(" " + mnt_ + " ") == std::string::npos) continue;
    found = true;
    EXPECT_THAT(line, ::testing::HasSubstr("hidepid=invisible"));
    EXPECT_THAT(line, ::testing::HasSubstr("gid=" + std::to_string(kExempt)));
  }
  EXPECT_TRUE(found) << info;
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
