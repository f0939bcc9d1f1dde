#include "test/util/fs_util.h"

#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {

std::string TempDirRoot() {
  // The runner's --fs-root: somewhere on the container's root filesystem.
  const char* fs_root = getenv("FS_TEST_ROOT");
  if (fs_root != nullptr && *fs_root != '\0') return fs_root;
  if (IsRunningOnSandbox()) return "/tmp";
  const char* d = getenv("TEST_TMPDIR");
  return d != nullptr && *d != '\0' ? d : "/tmp";
}

TempDir::TempDir(const std::string& root) {
  std::string tmpl = root + "/fs_test.XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp(" << tmpl << "): " << strerror(errno);
    return;
  }
  path_ = buf.data();
}

TempDir::~TempDir() {
  if (!path_.empty()) RemoveTree(path_);
}

std::string TempDir::Join(const std::string& name) const {
  return path_ + "/" + name;
}

namespace {

int RemoveOne(const char* path, const struct stat* st, int type,
              struct FTW* ftw) {
  (void)st;
  (void)ftw;
  if (type == FTW_DP) {
    rmdir(path);
  } else {
    unlink(path);
  }
  return 0;
}

}  // namespace

void RemoveTree(const std::string& path) {
  // Directories made unsearchable by a test would stop the walk.
  chmod(path.c_str(), 0700);
  nftw(path.c_str(), RemoveOne, 16, FTW_DEPTH | FTW_PHYS);
}

bool WriteFile(const std::string& path, const std::string& contents) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    ADD_FAILURE() << "open(" << path << "): " << strerror(errno);
    return false;
  }
  size_t done = 0;
  while (done < contents.size()) {
    ssize_t n = write(fd, contents.data() + done, contents.size() - done);
    if (n <= 0) {
      ADD_FAILURE() << "write(" << path << "): " << strerror(errno);
      close(fd);
      return false;
    }
    done += n;
  }
  close(fd);
  return true;
}

std::string ReadFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    ADD_FAILURE() << "open(" << path << "): " << strerror(errno);
    return "";
  }
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0) {
      ADD_FAILURE() << "read(" << path << "): " << strerror(errno);
      break;
    }
    if (n == 0) break;
    out.append(buf, n);
  }
  close(fd);
  return out;
}

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

int RunAsNobody(const std::function<int()>& fn) {
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (setgroups(0, nullptr) != 0 || setresgid(kNobody, kNobody, kNobody) != 0 ||
        setresuid(kNobody, kNobody, kNobody) != 0) {
      _exit(126);
    }
    _exit(fn());
  }
  int status;
  if (waitpid(pid, &status, 0) != pid) return -1;
  if (!WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

}  // namespace testing
}  // namespace pyvisor
