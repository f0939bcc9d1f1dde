// Mount namespaces: unshare(CLONE_NEWNS), clone(CLONE_NEWNS) and setns(2),
// mount propagation between them (MS_SHARED, MS_SLAVE, MS_PRIVATE,
// MS_UNBINDABLE), /proc/pid/ns/mnt and /proc/pid/mountinfo.
//
// Every case runs in a forked child that first moves to a mount namespace
// of its own and makes every mount in it private, so that natively nothing
// it mounts, and no propagation it sets up, reaches the host. The child
// reports failures through its exit status (CHECK prints the line).

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/fs_util.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

// CHECK ends a forked child with a message when cond is false.
#define CHECK(cond)                                                      \
  do {                                                                   \
    if (!(cond)) {                                                       \
      fprintf(stderr, "%s:%d: CHECK(%s) failed, errno %d (%s)\n",        \
              __FILE__, __LINE__, #cond, errno, strerror(errno));        \
      _exit(1);                                                          \
    }                                                                    \
  } while (0)

// Runs fn in a forked child and returns its wait status.
int InChild(const std::function<void()>& fn) {
  pid_t pid = fork();
  if (pid == 0) {
    fn();
    _exit(0);
  }
  if (pid < 0) return -1;
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return status;
}

// Waits for pid, a child, and reports whether it exited with 0.
bool Reaped(pid_t pid) {
  int status = 0;
  return waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
         WEXITSTATUS(status) == 0;
}

// Runs fn in a child of its own mount namespace in which every mount is
// private (see the file comment); the test fails unless fn returns
// normally.
void InPrivateNamespace(const std::function<void()>& fn) {
  int status = InChild([&] {
    CHECK(unshare(CLONE_NEWNS) == 0);
    CHECK(mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0);
    fn();
  });
  EXPECT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// A pipe used to say "go on" between two processes.
struct Gate {
  int fds[2];
  Gate() { CHECK(pipe(fds) == 0); }
  void Open() { CHECK(write(fds[1], "x", 1) == 1); }
  void Pass() {
    char c;
    CHECK(read(fds[0], &c, 1) == 1);
  }
};

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

bool Touch(const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return false;
  close(fd);
  return true;
}

std::string Slurp(const std::string& path) {
  std::string out;
  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) return out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, n);
  close(fd);
  return out;
}

// Returns the optional fields of the mountinfo line (of pid's, "self" for
// the caller) whose mount point is path, "" if they are empty, or "none"
// if no mount sits on path.
std::string OptionalFields(const std::string& pid, const std::string& path) {
  std::string info = Slurp("/proc/" + pid + "/mountinfo");
  std::string found = "none";
  size_t pos = 0;
  while (pos < info.size()) {
    size_t end = info.find('\n', pos);
    if (end == std::string::npos) end = info.size();
    std::string line = info.substr(pos, end - pos);
    pos = end + 1;
    // id parent major:minor root point options [optional...] - ...
    size_t f = 0;
    std::string fields[6];
    size_t start = 0;
    for (; f < 6; f++) {
      size_t sp = line.find(' ', start);
      if (sp == std::string::npos) break;
      fields[f] = line.substr(start, sp - start);
      start = sp + 1;
    }
    if (f < 6 || fields[4] != path) continue;
    size_t dash = line.find(" - ", start - 1);
    std::string opt = dash == std::string::npos || dash < start
                          ? ""
                          : line.substr(start, dash - start);
    // The last mount on a path is the visible one.
    found = opt;
  }
  return found;
}

// Returns the number after prefix ("shared:") in fields, or -1.
long Field(const std::string& fields, const std::string& prefix) {
  size_t p = fields.find(prefix);
  if (p == std::string::npos) return -1;
  return strtol(fields.c_str() + p + prefix.size(), nullptr, 10);
}

ino_t NsIno(const std::string& pid, const std::string& kind = "mnt") {
  struct stat st;
  if (stat(("/proc/" + pid + "/ns/" + kind).c_str(), &st) != 0) return 0;
  return st.st_ino;
}

class MountNamespaceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    mnt_ = dir_.Join("mnt");
    ASSERT_THAT(mkdir(mnt_.c_str(), 0755), SyscallSucceeds());
  }
  TempDir dir_;
  std::string mnt_;
};

TEST_F(MountNamespaceTest, UnshareHidesMountsFromTheParent) {
  const std::string mnt = mnt_;
  InPrivateNamespace([&] {
    Gate mounted, done;
    pid_t child = fork();
    if (child == 0) {
      CHECK(unshare(CLONE_NEWNS) == 0);
      CHECK(mount("none", mnt.c_str(), "tmpfs", 0, nullptr) == 0);
      CHECK(Touch(mnt + "/f"));
      mounted.Open();
      done.Pass();
      _exit(0);
    }
    CHECK(child > 0);
    mounted.Pass();
    CHECK(!Exists(mnt + "/f"));
    CHECK(OptionalFields("self", mnt) == "none");
    // The child's mountinfo shows its namespace.
    CHECK(OptionalFields(std::to_string(child), mnt) == "");
    CHECK(Slurp("/proc/" + std::to_string(child) + "/mounts").find(mnt) !=
          std::string::npos);
    CHECK(Slurp("/proc/self/mounts").find(mnt) == std::string::npos);
    done.Open();
    CHECK(Reaped(child));
  });
}

TEST_F(MountNamespaceTest, CopiesTheTreeAndUnmountsStayInside) {
  const std::string mnt = mnt_;
  InPrivateNamespace([&] {
    CHECK(mount("none", mnt.c_str(), "tmpfs", 0, nullptr) == 0);
    CHECK(Touch(mnt + "/f"));
    // The working directory moves to the copy of its mount.
    CHECK(chdir(mnt.c_str()) == 0);
    pid_t child = fork();
    if (child == 0) {
      CHECK(unshare(CLONE_NEWNS) == 0);
      CHECK(Exists("f"));
      CHECK(Exists(mnt + "/f"));
      CHECK(chdir("/") == 0);
      // The copy is not busy because of the parent's working directory.
      CHECK(umount(mnt.c_str()) == 0);
      CHECK(!Exists(mnt + "/f"));
      _exit(0);
    }
    CHECK(child > 0);
    CHECK(Reaped(child));
    CHECK(Exists(mnt + "/f"));
    CHECK(chdir("/") == 0);
    CHECK(umount(mnt.c_str()) == 0);
  });
}

TEST_F(MountNamespaceTest, CloneNewns) {
  const std::string mnt = mnt_;
  InPrivateNamespace([&] {
    pid_t child = syscall(SYS_clone, CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0);
    if (child == 0) {
      CHECK(mount("none", mnt.c_str(), "tmpfs", 0, nullptr) == 0);
      CHECK(Touch(mnt + "/f"));
      _exit(0);
    }
    CHECK(child > 0);
    CHECK(Reaped(child));
    CHECK(!Exists(mnt + "/f"));
    errno = 0;
    CHECK(syscall(SYS_clone, CLONE_NEWNS | CLONE_FS | SIGCHLD, 0, 0, 0, 0) ==
              -1 &&
          errno == EINVAL);
  });
}

TEST_F(MountNamespaceTest, SharedMountsPropagateBothWays) {
  const std::string m = mnt_;
  InPrivateNamespace([&] {
    CHECK(mount("none", m.c_str(), "tmpfs", 0, nullptr) == 0);
    CHECK(mkdir((m + "/a").c_str(), 0755) == 0);
    CHECK(mkdir((m + "/b").c_str(), 0755) == 0);
    CHECK(mount(nullptr, m.c_str(), nullptr, MS_SHARED, nullptr) == 0);
    long group = Field(OptionalFields("self", m), "shared:");
    CHECK(group > 0);
    Gate unshared, child_mounted, parent_mounted, child_unmounted, done;
    pid_t child = fork();
    if (child == 0) {
      CHECK(unshare(CLONE_NEWNS) == 0);
      // The copy is a peer of the original.
      CHECK(Field(OptionalFields("self", m), "shared:") == group);
      unshared.Open();
      CHECK(mount("none", (m + "/a").c_str(), "tmpfs", 0, nullptr) == 0);
      CHECK(Touch(m + "/a/from-child"));
      child_mounted.Open();
      parent_mounted.Pass();
      CHECK(Exists(m + "/b/from-parent"));
      CHECK(umount((m + "/a").c_str()) == 0);
      child_unmounted.Open();
      done.Pass();
      _exit(0);
    }
    CHECK(child > 0);
    unshared.Pass();
    child_mounted.Pass();
    CHECK(Exists(m + "/a/from-child"));
    // What arrives under a shared mount is shared too.
    CHECK(Field(OptionalFields("self", m + "/a"), "shared:") > 0);
    CHECK(mount("none", (m + "/b").c_str(), "tmpfs", 0, nullptr) == 0);
    CHECK(Touch(m + "/b/from-parent"));
    parent_mounted.Open();
    child_unmounted.Pass();
    // The unmount propagated too.
    CHECK(!Exists(m + "/a/from-child"));
    CHECK(OptionalFields("self", m + "/a") == "none");
    done.Open();
    CHECK(Reaped(child));
  });
}

TEST_F(MountNamespaceTest, PrivateMountsDoNotPropagate) {
  const std::string m = mnt_;
  InPrivateNamespace([&] {
    CHECK(mount("none", m.c_str(), "tmpfs", 0, nullptr) == 0);
    CHECK(mkdir((m + "/a").c_str(), 0755) == 0);
    CHECK(mount(nullptr, m.c_str(), nullptr, MS_SHARED, nullptr) == 0);
    Gate mounted, done;
    pid_t child = fork();
    if (child == 0) {
      CHECK(unshare(CLONE_NEWNS) == 0);
      CHECK(mount(nullptr, m.c_str(), nullptr, MS_PRIVATE, nullptr) == 0);
      CHECK(OptionalFields("self", m) == "");
      CHECK(mount("none", (m + "/a").c_str(), "tmpfs", 0, nullptr) == 0);
      CHECK(Touch(m + "/a/f"));
      mounted.Open();
      done.Pass();
      _exit(0);
    }
    CHECK(child > 0);
    mounted.Pass();
    CHECK(!Exists(m + "/a/f"));
    // The parent's mount is still shared, now without peers.
    CHECK(Field(OptionalFields("self", m), "shared:") > 0);
    done.Open();
    CHECK(Reaped(child));
  });
}

TEST_F(MountNamespaceTest, SlavesReceiveButDoNotSend) {
  const std::string m = mnt_;
  InPrivateNamespace([&] {
    CHECK(mount("none", m.c_str(), "tmpfs", 0, nullptr) == 0);
    CHECK(mkdir((m + "/a").c_str(), 0755) == 0);
    CHECK(mkdir((m + "/b").c_str(), 0755) == 0);
    CHECK(mount(nullptr, m.c_str(), nullptr, MS_SHARED, nullptr) == 0);
    long group = Field(OptionalFields("self", m), "shared:");
    Gate ready, parent_mounted, child_mounted, done;
    pid_t child = fork();
    if (child == 0) {
      CHECK(unshare(CLONE_NEWNS) == 0);
      CHECK(mount(nullptr, m.c_str(), nullptr, MS_SLAVE, nullptr) == 0);
      std::string fields = OptionalFields("self", m);
      CHECK(Field(fields, "master:") == group);
      CHECK(Field(fields, "shared:") == -1);
      ready.Open();
      parent_mounted.Pass();
      CHECK(Exists(m + "/a/from-parent"));
      // A received mount is a slave as well.
      CHECK(Field(OptionalFields("self", m + "/a"), "master:") > 0);
      CHECK(mount("none", (m + "/b").c_str(), "tmpfs", 0, nullptr) == 0);
      CHECK(Touch(m + "/b/from-child"));
      child_mounted.Open();
      done.Pass();
      _exit(0);
    }
    CHECK(child > 0);
    ready.Pass();
    CHECK(mount("none", (m + "/a").c_str(), "tmpfs", 0, nullptr) == 0);
    CHECK(Touch(m + "/a/from-parent"));
    parent_mounted.Open();
    child_mounted.Pass();
    CHECK(!Exists(m + "/b/from-child"));
    done.Open();
    CHECK(Reaped(child));
  });
}

TEST_F(MountNamespaceTest, MoveUnderASharedMountPropagates) {
  const std::string m = mnt_;
  const std::string elsewhere = dir_.Join("elsewhere");
  InPrivateNamespace([&] {
    CHECK(mkdir(elsewhere.c_str(), 0755) == 0);
    CHECK(mount("none", elsewhere.c_str(), "tmpfs", 0, nullptr) == 0);
    CHECK(Touch(elsewhere + "/moved"));
    CHECK(mount("none", m.c_str(), "tmpfs", 0, nullptr) == 0);
    CHECK(mkdir((m + "/a").c_str(), 0755) == 0);
    CHECK(mount(nullptr, m.c_str(), nullptr, MS_SHARED, nullptr) == 0);
    Gate ready, moved, done;
    pid_t child = fork();
    if (child == 0) {
      CHECK(unshare(CLONE_NEWNS) == 0);
      ready.Open();
      moved.Pass();
      CHECK(Exists(m + "/a/moved"));
      done.Pass();
      _exit(0);
    }
    CHECK(child > 0);
    ready.Pass();
    CHECK(mount(elsewhere.c_str(), (m + "/a").c_str(), nullptr, MS_MOVE,
                nullptr) == 0);
    CHECK(Field(OptionalFields("self", m + "/a"), "shared:") > 0);
    moved.Open();
    // A mount under a shared one stays where it is.
    errno = 0;
    CHECK(mount((m + "/a").c_str(), elsewhere.c_str(), nullptr, MS_MOVE,
                nullptr) == -1 &&
          errno == EINVAL);
    done.Open();
    CHECK(Reaped(child));
  });
}

TEST_F(MountNamespaceTest, RecursivePropagationChange) {
  const std::string m = mnt_;
  InPrivateNamespace([&] {
    CHECK(mount("none", m.c_str(), "tmpfs", 0, nullptr) == 0);
    CHECK(mkdir((m + "/a").c_str(), 0755) == 0);
    CHECK(mount("none", (m + "/a").c_str(), "tmpfs", 0, nullptr) == 0);
    CHECK(mount(nullptr, m.c_str(), nullptr, MS_REC | MS_SHARED, nullptr) ==
          0);
    long outer = Field(OptionalFields("self", m), "shared:");
    long inner = Field(OptionalFields("self", m + "/a"), "shared:");
    CHECK(outer > 0 && inner > 0 && outer != inner);
    CHECK(mount(nullptr, m.c_str(), nullptr, MS_REC | MS_PRIVATE, nullptr) ==
          0);
    CHECK(OptionalFields("self", m) == "");
    CHECK(OptionalFields("self", m + "/a") == "");
    // One propagation type at a time.
    errno = 0;
    CHECK(mount(nullptr, m.c_str(), nullptr, MS_SHARED | MS_PRIVATE,
                nullptr) == -1 &&
          errno == EINVAL);
    // Only the root of a mount.
    errno = 0;
    CHECK(mkdir((m + "/d").c_str(), 0755) == 0);
    CHECK(mount(nullptr, (m + "/d").c_str(), nullptr, MS_SHARED, nullptr) ==
              -1 &&
          errno == EINVAL);
  });
}

TEST_F(MountNamespaceTest, UnbindableMounts) {
  const std::string m = mnt_;
  const std::string other = dir_.Join("other");
  InPrivateNamespace([&] {
    CHECK(mkdir(other.c_str(), 0755) == 0);
    CHECK(mount("none", m.c_str(), "tmpfs", 0, nullptr) == 0);
    CHECK(mount(nullptr, m.c_str(), nullptr, MS_UNBINDABLE, nullptr) == 0);
    CHECK(OptionalFields("self", m) == "unbindable");
    errno = 0;
    CHECK(mount(m.c_str(), other.c_str(), nullptr, MS_BIND, nullptr) == -1 &&
          errno == EINVAL);
    // A namespace copy has it, but not unbindable (as Linux 6.x does).
    pid_t child = fork();
    if (child == 0) {
      CHECK(unshare(CLONE_NEWNS) == 0);
      CHECK(OptionalFields("self", m) == "");
      _exit(0);
    }
    CHECK(child > 0 && Reaped(child));
  });
}

TEST_F(MountNamespaceTest, NamespaceInodes) {
  InPrivateNamespace([&] {
    ino_t mine = NsIno("self");
    CHECK(mine != 0);
    char link[64] = {};
    CHECK(readlink("/proc/self/ns/mnt", link, sizeof(link) - 1) > 0);
    CHECK(std::string(link) == "mnt:[" + std::to_string(mine) + "]");
    Gate checked, unshared, done;
    pid_t child = fork();
    if (child == 0) {
      checked.Pass();
      CHECK(unshare(CLONE_NEWNS | CLONE_NEWUTS) == 0);
      unshared.Open();
      done.Pass();
      _exit(0);
    }
    CHECK(child > 0);
    std::string pid = std::to_string(child);
    // Same namespace, same inode.
    CHECK(NsIno(pid) == mine);
    CHECK(NsIno(pid, "uts") == NsIno("self", "uts"));
    checked.Open();
    unshared.Pass();
    CHECK(NsIno(pid) != mine && NsIno(pid) != 0);
    CHECK(NsIno(pid, "uts") != NsIno("self", "uts"));
    // An open namespace file has the same inode.
    int fd = open(("/proc/" + pid + "/ns/mnt").c_str(), O_RDONLY);
    CHECK(fd >= 0);
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && st.st_ino == NsIno(pid));
    close(fd);
    done.Open();
    CHECK(Reaped(child));
  });
}

TEST_F(MountNamespaceTest, SetnsJoinsTheNamespace) {
  const std::string mnt = mnt_;
  InPrivateNamespace([&] {
    Gate mounted, done;
    pid_t child = fork();
    if (child == 0) {
      CHECK(unshare(CLONE_NEWNS) == 0);
      CHECK(mount("none", mnt.c_str(), "tmpfs", 0, nullptr) == 0);
      CHECK(Touch(mnt + "/f"));
      mounted.Open();
      done.Pass();
      _exit(0);
    }
    CHECK(child > 0);
    mounted.Pass();
    std::string pid = std::to_string(child);
    int fd = open(("/proc/" + pid + "/ns/mnt").c_str(), O_RDONLY);
    CHECK(fd >= 0);
    done.Open();
    CHECK(Reaped(child));
    // The open file keeps the namespace and its mounts after its last
    // task is gone.
    pid_t joiner = fork();
    if (joiner == 0) {
      errno = 0;
      CHECK(setns(fd, CLONE_NEWUTS) == -1 && errno == EINVAL);
      CHECK(setns(fd, CLONE_NEWNS) == 0);
      CHECK(Exists(mnt + "/f"));
      // The root and working directory are the namespace's root.
      char cwd[64];
      CHECK(getcwd(cwd, sizeof(cwd)) != nullptr);
      CHECK(std::string(cwd) == "/");
      _exit(0);
    }
    CHECK(joiner > 0 && Reaped(joiner));
    // nstype 0 accepts any kind.
    joiner = fork();
    if (joiner == 0) {
      CHECK(setns(fd, 0) == 0);
      CHECK(Exists(mnt + "/f"));
      _exit(0);
    }
    CHECK(joiner > 0 && Reaped(joiner));
    close(fd);
    CHECK(!Exists(mnt + "/f"));
  });
}

TEST_F(MountNamespaceTest, SetnsThroughAPidfd) {
  const std::string mnt = mnt_;
  InPrivateNamespace([&] {
    Gate ready, done;
    pid_t child = fork();
    if (child == 0) {
      CHECK(unshare(CLONE_NEWNS | CLONE_NEWUTS) == 0);
      CHECK(mount("none", mnt.c_str(), "tmpfs", 0, nullptr) == 0);
      CHECK(Touch(mnt + "/f"));
      CHECK(syscall(SYS_sethostname, "pidfd-uts", 9) == 0);
      ready.Open();
      done.Pass();
      _exit(0);
    }
    CHECK(child > 0);
    ready.Pass();
    int pidfd = syscall(SYS_pidfd_open, child, 0);
    CHECK(pidfd >= 0);
    pid_t joiner = fork();
    if (joiner == 0) {
      errno = 0;
      CHECK(setns(pidfd, 0) == -1 && errno == EINVAL);
      errno = 0;
      CHECK(setns(pidfd, 1) == -1 && errno == EINVAL);
      CHECK(setns(pidfd, CLONE_NEWNS | CLONE_NEWUTS) == 0);
      CHECK(Exists(mnt + "/f"));
      char name[64] = {};
      CHECK(gethostname(name, sizeof(name)) == 0);
      CHECK(std::string(name) == "pidfd-uts");
      CHECK(NsIno("self") == NsIno(std::to_string(child)));
      CHECK(NsIno("self", "uts") == NsIno(std::to_string(child), "uts"));
      _exit(0);
    }
    CHECK(joiner > 0 && Reaped(joiner));
    done.Open();
    CHECK(Reaped(child));
    close(pidfd);
  });
}

TEST_F(MountNamespaceTest, SetnsUtsThroughItsFile) {
  InPrivateNamespace([&] {
    Gate ready, done;
    pid_t child = fork();
    if (child == 0) {
      CHECK(unshare(CLONE_NEWUTS) == 0);
      CHECK(syscall(SYS_sethostname, "file-uts", 8) == 0);
      ready.Open();
      done.Pass();
      _exit(0);
    }
    CHECK(child > 0);
    ready.Pass();
    int fd = open(("/proc/" + std::to_string(child) + "/ns/uts").c_str(),
                  O_RDONLY);
    CHECK(fd >= 0);
    done.Open();
    CHECK(Reaped(child));
    pid_t joiner = fork();
    if (joiner == 0) {
      errno = 0;
      CHECK(setns(fd, CLONE_NEWNS) == -1 && errno == EINVAL);
      CHECK(setns(fd, CLONE_NEWUTS) == 0);
      char name[64] = {};
      CHECK(gethostname(name, sizeof(name)) == 0);
      CHECK(std::string(name) == "file-uts");
      _exit(0);
    }
    CHECK(joiner > 0 && Reaped(joiner));
    close(fd);
  });
}

TEST_F(MountNamespaceTest, SetnsWithASharedFsContextIsEinval) {
  InPrivateNamespace([&] {
    int fd = open("/proc/self/ns/mnt", O_RDONLY);
    CHECK(fd >= 0);
    // A thread shares the fs context (CLONE_FS).
    int err = 0;
    std::thread t([&] {
      if (syscall(SYS_setns, fd, CLONE_NEWNS) == 0) {
        err = 0;
      } else {
        err = errno;
      }
    });
    t.join();
    CHECK(err == EINVAL);
    // Alone again, the process may.
    CHECK(setns(fd, CLONE_NEWNS) == 0);
    close(fd);
  });
}

TEST_F(MountNamespaceTest, NeedsCapSysAdmin) {
  InPrivateNamespace([&] {
    int fd = open("/proc/self/ns/mnt", O_RDONLY);
    CHECK(fd >= 0);
    CHECK(syscall(SYS_setresuid, 65534, 65534, 65534) == 0);
    errno = 0;
    CHECK(unshare(CLONE_NEWNS) == -1 && errno == EPERM);
    errno = 0;
    CHECK(syscall(SYS_clone, CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0) == -1 &&
          errno == EPERM);
    errno = 0;
    CHECK(setns(fd, CLONE_NEWNS) == -1 && errno == EPERM);
  });
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
