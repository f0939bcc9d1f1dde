// Filesystem helpers for the system-call tests: a scratch directory per
// test, small file utilities, and running a check as an unprivileged user.

#ifndef TEST_UTIL_FS_UTIL_H_
#define TEST_UTIL_FS_UTIL_H_

#include <sys/types.h>

#include <functional>
#include <string>

namespace pyvisor {
namespace testing {

// TempDirRoot returns where tests make their files: $FS_TEST_ROOT if set
// (the runner's --fs-root), else /tmp in the sandbox (the sentry's tmpfs),
// else $TEST_TMPDIR if set, else /tmp.
std::string TempDirRoot();

// TempDir is a fresh directory under root (TempDirRoot by default), removed
// with everything in it when the TempDir goes away. The test fails
// (non-fatally; path() is then empty) if it cannot be made. Tests that run
// code as another user pass "/tmp", which any user may search ($TEST_TMPDIR
// may be under a private home directory).
class TempDir {
 public:
  explicit TempDir(const std::string& root = TempDirRoot());
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // path returns the directory's absolute path.
  const std::string& path() const { return path_; }

  // Join returns path()/name.
  std::string Join(const std::string& name) const;

 private:
  std::string path_;
};

// RemoveTree removes path and, if it is a directory, everything under it,
// without following symbolic links. Errors are ignored.
void RemoveTree(const std::string& path);

// WriteFile creates or truncates path (mode 0644) and writes contents.
// Returns false (and fails the test non-fatally) on error.
bool WriteFile(const std::string& path, const std::string& contents);

// ReadFile returns the contents of path, or "" after failing the test
// non-fatally.
std::string ReadFile(const std::string& path);

// Exists reports whether lstat(path) succeeds.
bool Exists(const std::string& path);

// kNobody is the user and group RunAsNobody switches to.
inline constexpr uid_t kNobody = 65534;

// RunAsNobody runs fn in a child process whose real, effective and saved
// user and group ids are kNobody, without supplementary groups, and returns
// the child's exit code (fn's return value), or -1 if it could not be run
// or died. Needs fork(2) and setresuid(2).
int RunAsNobody(const std::function<int()>& fn);

}  // namespace testing
}  // namespace pyvisor

#endif  // TEST_UTIL_FS_UTIL_H_
