// getdents(2), getdents64(2), and lseek(2) on directories.

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/fs_util.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

struct Dirent64 {
  uint64_t ino;
  int64_t off;
  uint16_t reclen;
  uint8_t type;
  char name[];
};

struct Entry {
  std::string name;
  int type;
  uint64_t ino;
};

// ReadAll reads every entry of fd with getdents64 and a buffer of size n.
std::vector<Entry> ReadAll(int fd, size_t n = 4096) {
  std::vector<Entry> out;
  std::vector<char> buf(n);
  for (;;) {
    long r = syscall(SYS_getdents64, fd, buf.data(), buf.size());
    EXPECT_GE(r, 0) << strerror(errno);
    if (r <= 0) break;
    for (long pos = 0; pos < r;) {
      auto* d = reinterpret_cast<Dirent64*>(buf.data() + pos);
      out.push_back({d->name, d->type, d->ino});
      EXPECT_EQ(d->reclen % 8, 0);
      pos += d->reclen;
    }
  }
  return out;
}

std::set<std::string> Names(const std::vector<Entry>& es) {
  std::set<std::string> s;
  for (const auto& e : es) s.insert(e.name);
  return s;
}

class GetdentsTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(dir_.path().empty()); }
  TempDir dir_;
};

TEST_F(GetdentsTest, ListsEntriesWithTypes) {
  ASSERT_TRUE(WriteFile(dir_.Join("f"), ""));
  ASSERT_THAT(mkdir(dir_.Join("d").c_str(), 0755), SyscallSucceeds());
  ASSERT_THAT(symlink("f", dir_.Join("l").c_str()), SyscallSucceeds());
  FileDescriptor fd(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_THAT(fd.get(), SyscallSucceeds());
  auto es = ReadAll(fd.get());
  EXPECT_EQ(Names(es), (std::set<std::string>{".", "..", "f", "d", "l"}));
  std::map<std::string, int> types;
  for (const auto& e : es) types[e.name] = e.type;
  EXPECT_EQ(types["f"], DT_REG);
  EXPECT_EQ(types["d"], DT_DIR);
  EXPECT_EQ(types["l"], DT_LNK);
  EXPECT_EQ(types["."], DT_DIR);
  struct stat st;
  ASSERT_THAT(stat(dir_.Join("f").c_str(), &st), SyscallSucceeds());
  for (const auto& e : es) {
    if (e.name == "f") {
      EXPECT_EQ(e.ino, st.st_ino);
    }
  }
}

TEST_F(GetdentsTest, ManyEntriesAcrossCalls) {
  std::set<std::string> want = {".", ".."};
  for (int i = 0; i < 300; i++) {
    std::string n = "file_with_a_longish_name_" + std::to_string(i);
    ASSERT_TRUE(WriteFile(dir_.Join(n), ""));
    want.insert(n);
  }
  FileDescriptor fd(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
  auto es = ReadAll(fd.get(), 512);
  EXPECT_EQ(es.size(), want.size());
  EXPECT_EQ(Names(es), want);
}

TEST_F(GetdentsTest, RewindWithLseek) {
  ASSERT_TRUE(WriteFile(dir_.Join("f"), ""));
  FileDescriptor fd(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
  auto first = ReadAll(fd.get());
  EXPECT_THAT(lseek(fd.get(), 0, SEEK_SET), SyscallSucceedsWithValue(0));
  auto second = ReadAll(fd.get());
  EXPECT_EQ(Names(first), Names(second));
  // tmpfs directories have no end to seek to (ext4's answer differs).
  struct statfs sf;
  ASSERT_THAT(fstatfs(fd.get(), &sf), SyscallSucceeds());
  if (sf.f_type == TMPFS_MAGIC) {
    EXPECT_THAT(lseek(fd.get(), 0, SEEK_END), SyscallFailsWithErrno(EINVAL));
  }
}

TEST_F(GetdentsTest, SeekToDOffResumes) {
  for (int i = 0; i < 5; i++) ASSERT_TRUE(WriteFile(dir_.Join(std::to_string(i)), ""));
  FileDescriptor fd(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
  char buf[4096];
  long r = syscall(SYS_getdents64, fd.get(), buf, sizeof(buf));
  ASSERT_GT(r, 0);
  // Resume after the third entry using its d_off.
  std::vector<std::string> all;
  int64_t third_off = 0;
  for (long pos = 0; pos < r;) {
    auto* d = reinterpret_cast<Dirent64*>(buf + pos);
    all.push_back(d->name);
    if (all.size() == 3) third_off = d->off;
    pos += d->reclen;
  }
  ASSERT_EQ(all.size(), 7u);
  ASSERT_THAT(lseek(fd.get(), third_off, SEEK_SET), SyscallSucceeds());
  auto rest = ReadAll(fd.get());
  ASSERT_EQ(rest.size(), 4u);
  EXPECT_EQ(rest[0].name, all[3]);
}

TEST_F(GetdentsTest, SmallBufferIsEinval) {
  ASSERT_TRUE(WriteFile(dir_.Join("f"), ""));
  FileDescriptor fd(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
  char buf[8];
  EXPECT_THAT(syscall(SYS_getdents64, fd.get(), buf, sizeof(buf)),
              SyscallFailsWithErrno(EINVAL));
}

TEST_F(GetdentsTest, Errors) {
  ASSERT_TRUE(WriteFile(dir_.Join("f"), ""));
  FileDescriptor f(open(dir_.Join("f").c_str(), O_RDONLY));
  char buf[256];
  EXPECT_THAT(syscall(SYS_getdents64, f.get(), buf, sizeof(buf)),
              SyscallFailsWithErrno(ENOTDIR));
  EXPECT_THAT(syscall(SYS_getdents64, -1, buf, sizeof(buf)),
              SyscallFailsWithErrno(EBADF));
  FileDescriptor d(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
  EXPECT_THAT(syscall(SYS_getdents64, d.get(), reinterpret_cast<void*>(8), 256),
              SyscallFailsWithErrno(EFAULT));
  FileDescriptor p(open(dir_.path().c_str(), O_PATH));
  EXPECT_THAT(syscall(SYS_getdents64, p.get(), buf, sizeof(buf)),
              SyscallFailsWithErrno(EBADF));
}

TEST_F(GetdentsTest, OldGetdentsHasTypeInLastByte) {
  ASSERT_TRUE(WriteFile(dir_.Join("f"), ""));
  FileDescriptor fd(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
  char buf[4096];
  long r = syscall(SYS_getdents, fd.get(), buf, sizeof(buf));
  ASSERT_GT(r, 0);
  bool found = false;
  for (long pos = 0; pos < r;) {
    unsigned short reclen;
    memcpy(&reclen, buf + pos + 16, 2);
    const char* name = buf + pos + 18;
    if (strcmp(name, "f") == 0) {
      found = true;
      EXPECT_EQ(buf[pos + reclen - 1], DT_REG);
    }
    pos += reclen;
  }
  EXPECT_TRUE(found);
}

TEST_F(GetdentsTest, RemovedDirectoryReadsAsEnoent) {
  std::string d = dir_.Join("d");
  ASSERT_THAT(mkdir(d.c_str(), 0755), SyscallSucceeds());
  FileDescriptor fd(open(d.c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_THAT(rmdir(d.c_str()), SyscallSucceeds());
  char buf[256];
  EXPECT_THAT(syscall(SYS_getdents64, fd.get(), buf, sizeof(buf)),
              SyscallFailsWithErrno(ENOENT));
}

TEST_F(GetdentsTest, ReaddirOfHostRoot) {
  DIR* d = opendir("/");
  ASSERT_NE(d, nullptr);
  std::set<std::string> names;
  while (struct dirent* e = readdir(d)) names.insert(e->d_name);
  closedir(d);
  EXPECT_TRUE(names.count("tmp"));
  EXPECT_TRUE(names.count(".."));
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
