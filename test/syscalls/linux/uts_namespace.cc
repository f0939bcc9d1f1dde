// sethostname(2) and setdomainname(2) inside UTS namespaces made by
// unshare(CLONE_NEWUTS) and clone(CLONE_NEWUTS), which keep the changes
// away from everyone else (the host too, when the test runs natively).

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/multiprocess_util.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

std::string Nodename() {
  struct utsname u;
  EXPECT_THAT(syscall(SYS_uname, &u), SyscallSucceeds());
  return u.nodename;
}

std::string Domainname() {
  struct utsname u;
  EXPECT_THAT(syscall(SYS_uname, &u), SyscallSucceeds());
  return u.domainname;
}

TEST(UtsNamespaceTest, UnshareGivesAThreadItsOwnNames) {
  const std::string host = Nodename();
  const std::string domain = Domainname();
  std::thread t([] {
    ASSERT_THAT(syscall(SYS_unshare, CLONE_NEWUTS), SyscallSucceeds());
    ASSERT_THAT(syscall(SYS_sethostname, "pyvisor-uts", 11), SyscallSucceeds());
    ASSERT_THAT(syscall(SYS_setdomainname, "example", 7), SyscallSucceeds());
    EXPECT_EQ(Nodename(), "pyvisor-uts");
    EXPECT_EQ(Domainname(), "example");
  });
  t.join();
  EXPECT_EQ(Nodename(), host);
  EXPECT_EQ(Domainname(), domain);
}

TEST(UtsNamespaceTest, NameLengths) {
  std::thread t([] {
    ASSERT_THAT(syscall(SYS_unshare, CLONE_NEWUTS), SyscallSucceeds());
    const std::string longest(64, 'h');
    ASSERT_THAT(syscall(SYS_sethostname, longest.c_str(), 64), SyscallSucceeds());
    EXPECT_EQ(Nodename(), longest);
    EXPECT_THAT(syscall(SYS_sethostname, longest.c_str(), 65),
                SyscallFailsWithErrno(EINVAL));
    EXPECT_THAT(syscall(SYS_sethostname, "x", -1), SyscallFailsWithErrno(EINVAL));
    EXPECT_THAT(syscall(SYS_sethostname, nullptr, 4),
                SyscallFailsWithErrno(EFAULT));
    // A name may be empty.
    ASSERT_THAT(syscall(SYS_sethostname, "", 0), SyscallSucceeds());
    EXPECT_EQ(Nodename(), "");
  });
  t.join();
}

// Names are bytes, not text: what is set reads back unchanged.
TEST(UtsNamespaceTest, NamesThatAreNotUtf8) {
  std::thread t([] {
    ASSERT_THAT(syscall(SYS_unshare, CLONE_NEWUTS), SyscallSucceeds());
    const char name[] = "\xe4\xff-x";
    ASSERT_THAT(syscall(SYS_sethostname, name, 4), SyscallSucceeds());
    ASSERT_THAT(syscall(SYS_setdomainname, name, 4), SyscallSucceeds());
    EXPECT_EQ(Nodename(), name);
    EXPECT_EQ(Domainname(), name);

    // As /proc/sys shows them to the thread.
    int fd = open("/proc/sys/kernel/hostname", O_RDONLY);
    ASSERT_THAT(fd, SyscallSucceeds());
    char buf[16] = {};
    EXPECT_THAT(read(fd, buf, sizeof(buf)), SyscallSucceedsWithValue(5));
    EXPECT_EQ(std::string(buf), std::string(name) + "\n");
    close(fd);
  });
  t.join();
}

TEST(UtsNamespaceTest, ChangingNamesNeedsCapSysAdmin) {
  std::thread t([] {
    ASSERT_THAT(syscall(SYS_unshare, CLONE_NEWUTS), SyscallSucceeds());
    ASSERT_THAT(syscall(SYS_setresuid, 65534, 65534, 65534), SyscallSucceeds());
    EXPECT_THAT(syscall(SYS_sethostname, "nope", 4), SyscallFailsWithErrno(EPERM));
    EXPECT_THAT(syscall(SYS_setdomainname, "nope", 4),
                SyscallFailsWithErrno(EPERM));
  });
  t.join();
}

TEST(UtsNamespaceTest, CloneNewutsChild) {
  const std::string host = Nodename();
  std::string seen;
  const pid_t pid = VforkRun(
      [&]() -> int {
        if (syscall(SYS_sethostname, "child-uts", 9) != 0) return 1;
        struct utsname u;
        syscall(SYS_uname, &u);
        return strcmp(u.nodename, "child-uts") == 0 ? 0 : 2;
      },
      CLONE_NEWUTS | SIGCHLD);
  ASSERT_THAT(pid, SyscallSucceeds());
  const int status = WaitForStatus(pid);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(Nodename(), host);
}

TEST(UtsNamespaceTest, ThreadsShareTheirNamespace) {
  std::thread t([] {
    ASSERT_THAT(syscall(SYS_unshare, CLONE_NEWUTS), SyscallSucceeds());
    ASSERT_THAT(syscall(SYS_sethostname, "outer", 5), SyscallSucceeds());
    // A thread created from here inherits the namespace.
    std::thread inner([] { EXPECT_EQ(Nodename(), "outer"); });
    inner.join();
  });
  t.join();
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
