// sysfs: the CPU files, transparent huge pages and /sys/fs/cgroup that
// programs probe.

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <set>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/fs_util.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

constexpr long kSysfsMagic = 0x62656572;

// ParseCpuList returns the CPUs of a list such as "0-3,5\n".
std::set<int> ParseCpuList(const std::string& text) {
  std::set<int> out;
  size_t i = 0;
  while (i < text.size() && text[i] != '\n') {
    char* end;
    long lo = strtol(text.c_str() + i, &end, 10);
    long hi = lo;
    if (*end == '-') hi = strtol(end + 1, &end, 10);
    for (long c = lo; c <= hi; c++) out.insert(c);
    i = end - text.c_str();
    if (i < text.size() && text[i] == ',') i++;
    if (end == text.c_str()) break;
  }
  return out;
}

TEST(SysfsTest, CpuLists) {
  std::string online = ReadFile("/sys/devices/system/cpu/online");
  std::set<int> cpus = ParseCpuList(online);
  ASSERT_FALSE(cpus.empty()) << online;
  EXPECT_TRUE(cpus.count(0));
  EXPECT_EQ(sysconf(_SC_NPROCESSORS_ONLN), static_cast<long>(cpus.size()));
  std::set<int> possible =
      ParseCpuList(ReadFile("/sys/devices/system/cpu/possible"));
  std::set<int> present =
      ParseCpuList(ReadFile("/sys/devices/system/cpu/present"));
  for (int c : cpus) {
    EXPECT_TRUE(possible.count(c)) << c;
    EXPECT_TRUE(present.count(c)) << c;
    struct stat st;
    std::string dir = "/sys/devices/system/cpu/cpu" + std::to_string(c);
    ASSERT_THAT(stat(dir.c_str(), &st), SyscallSucceeds());
    EXPECT_TRUE(S_ISDIR(st.st_mode));
  }
  // The CPUs this process may run on are online ones.
  cpu_set_t set;
  ASSERT_THAT(sched_getaffinity(0, sizeof(set), &set), SyscallSucceeds());
  for (int c = 0; c < CPU_SETSIZE; c++) {
    if (CPU_ISSET(c, &set)) {
      EXPECT_TRUE(cpus.count(c)) << c;
    }
  }
}

TEST(SysfsTest, TransparentHugepage) {
  std::string enabled =
      ReadFile("/sys/kernel/mm/transparent_hugepage/enabled");
  // One of the choices is selected, in brackets.
  EXPECT_THAT(enabled, ::testing::AnyOf(::testing::HasSubstr("[always]"),
                                        ::testing::HasSubstr("[madvise]"),
                                        ::testing::HasSubstr("[never]")));
  EXPECT_THAT(enabled, ::testing::EndsWith("\n"));
}

TEST(SysfsTest, CgroupDirAndMagic) {
  struct stat st;
  ASSERT_THAT(stat("/sys/fs/cgroup", &st), SyscallSucceeds());
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  struct statfs sfs;
  ASSERT_THAT(statfs("/sys/devices", &sfs), SyscallSucceeds());
  EXPECT_EQ(sfs.f_type, kSysfsMagic);
}

TEST(SysfsTest, AttributesAreNotWritable) {
  EXPECT_THAT(open("/sys/devices/system/cpu/online", O_WRONLY),
              SyscallFails());
  EXPECT_THAT(mkdir("/sys/devices/newdir", 0755), SyscallFails());
  struct stat st;
  ASSERT_THAT(stat("/sys/devices/system/cpu/online", &st), SyscallSucceeds());
  EXPECT_EQ(st.st_mode & 0222, 0);
  EXPECT_EQ(st.st_uid, 0u);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
