// execve of dynamically linked programs: the loader maps a PIE and its ELF
// interpreter and builds an auxiliary vector that ld.so and libc accept.
// The checks themselves run in linux/dynamic_helper.c, which is built
// without -static; this test executes it and reports what it found.

#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "test/util/multiprocess_util.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

std::string DynamicHelperPath() {
  std::string self = program_invocation_name;
  const size_t slash = self.rfind('/');
  const std::string dir =
      slash == std::string::npos ? "." : self.substr(0, slash);
  return dir + "/dynamic_helper";
}

struct Result {
  int status;
  std::string out;
};

// RunHelper executes the helper with args and collects its stdout and stderr.
Result RunHelper(const std::vector<std::string>& args) {
  int fds[2];
  EXPECT_THAT(pipe(fds), SyscallSucceeds());
  const std::string path = DynamicHelperPath();
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(path.c_str()));
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const int wfd = fds[1];
  const pid_t pid = VforkRun([&]() -> int {
    dup2(wfd, 1);
    dup2(wfd, 2);
    execv(argv[0], argv.data());
    return 127;
  });
  close(fds[1]);
  EXPECT_THAT(pid, SyscallSucceeds());
  Result r{-1, ""};
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof(buf))) > 0) r.out.append(buf, n);
  close(fds[0]);
  if (pid > 0) r.status = WaitForStatus(pid);
  return r;
}

TEST(ExecDynamicTest, LoaderGivesWhatLdSoAndLibcExpect) {
  const Result r = RunHelper({});
  EXPECT_TRUE(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0)
      << "status " << std::hex << r.status << "\n"
      << r.out;
  EXPECT_EQ(r.out, "ok\n");
}

TEST(ExecDynamicTest, DynamicProgramExecutesDynamicProgram) {
  const Result r = RunHelper({"chain", "3"});
  EXPECT_TRUE(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0)
      << "status " << std::hex << r.status << "\n"
      << r.out;
  EXPECT_EQ(r.out, "ok\n");
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
