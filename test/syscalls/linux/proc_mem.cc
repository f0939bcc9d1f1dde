// /proc/pid/mem: reads and writes through the protection (FOLL_FORCE), as
// debuggers use it (fs/proc/base.c mem_rw).

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/file_descriptor.h"
#include "test/util/syscall_matchers.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

const size_t kPage = 4096;

void* MapPage(int prot, int flags = MAP_PRIVATE | MAP_ANONYMOUS, int fd = -1) {
  void* p = mmap(nullptr, kPage, prot, flags, fd, 0);
  EXPECT_NE(p, MAP_FAILED) << strerror(errno);
  return p;
}

TEST(ProcMem, WritesIntoReadOnlyPrivateMapping) {
  char* p = static_cast<char*>(MapPage(PROT_READ | PROT_WRITE));
  strcpy(p, "before");
  ASSERT_EQ(mprotect(p, kPage, PROT_READ), 0);
  int fd = open("/proc/self/mem", O_RDWR);
  ASSERT_GE(fd, 0) << strerror(errno);
  EXPECT_THAT(pwrite(fd, "after!", 6, reinterpret_cast<uintptr_t>(p)),
              SyscallSucceedsWithValue(6));
  EXPECT_STREQ(p, "after!");
  // Still read-only for the application.
  char buf[7] = {};
  EXPECT_THAT(pread(fd, buf, 6, reinterpret_cast<uintptr_t>(p)),
              SyscallSucceedsWithValue(6));
  EXPECT_STREQ(buf, "after!");
  close(fd);
  munmap(p, kPage);
}

// Reading goes through PROT_NONE too.
TEST(ProcMem, ReadsProtNone) {
  char* p = static_cast<char*>(MapPage(PROT_READ | PROT_WRITE));
  strcpy(p, "hidden");
  ASSERT_EQ(mprotect(p, kPage, PROT_NONE), 0);
  int fd = open("/proc/self/mem", O_RDONLY);
  ASSERT_GE(fd, 0);
  char buf[7] = {};
  EXPECT_THAT(pread(fd, buf, 6, reinterpret_cast<uintptr_t>(p)),
              SyscallSucceedsWithValue(6));
  EXPECT_STREQ(buf, "hidden");
  close(fd);
  munmap(p, kPage);
}

// A debugger patching code: the new instructions run.
TEST(ProcMem, PatchesCode) {
  // mov eax, 1; ret
  const unsigned char one[] = {0xb8, 0x01, 0x00, 0x00, 0x00, 0xc3};
  // mov eax, 42; ret
  const unsigned char answer[] = {0xb8, 0x2a, 0x00, 0x00, 0x00, 0xc3};
  void* p = MapPage(PROT_READ | PROT_WRITE);
  memcpy(p, one, sizeof(one));
  ASSERT_EQ(mprotect(p, kPage, PROT_READ | PROT_EXEC), 0);
  auto fn = reinterpret_cast<int (*)()>(p);
  ASSERT_EQ(fn(), 1);
  int fd = open("/proc/self/mem", O_RDWR);
  ASSERT_GE(fd, 0);
  uintptr_t addr = reinterpret_cast<uintptr_t>(p);
  ASSERT_THAT(pwrite(fd, answer, sizeof(answer), addr),
              SyscallSucceedsWithValue(sizeof(answer)));
  EXPECT_EQ(fn(), 42);
  close(fd);
  munmap(p, kPage);
}

// Writing another process's memory copies the page it shares with its
// parent after fork: the parent keeps its own bytes.
TEST(ProcMem, WritesChildAfterFork) {
  char* p = static_cast<char*>(MapPage(PROT_READ | PROT_WRITE));
  strcpy(p, "parent");
  ASSERT_EQ(mprotect(p, kPage, PROT_READ), 0);
  int go[2], done[2];
  ASSERT_EQ(pipe(go), 0);
  ASSERT_EQ(pipe(done), 0);
  pid_t pid = fork();
  if (pid == 0) {
    char c;
    if (read(go[0], &c, 1) != 1) _exit(2);
    _exit(strcmp(p, "child!") == 0 ? 0 : 3);
  }
  ASSERT_GT(pid, 0);
  std::string path = "/proc/" + std::to_string(pid) + "/mem";
  int fd = open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0) << strerror(errno);
  EXPECT_THAT(pwrite(fd, "child!", 6, reinterpret_cast<uintptr_t>(p)),
              SyscallSucceedsWithValue(6));
  close(fd);
  ASSERT_EQ(write(go[1], "x", 1), 1);
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_STREQ(p, "parent");
  close(go[0]);
  close(go[1]);
  close(done[0]);
  close(done[1]);
  munmap(p, kPage);
}

// A shared mapping without write permission is not copy-on-write: the
// write fails rather than reach the file.
TEST(ProcMem, RefusesReadOnlySharedMapping) {
  int mfd = syscall(SYS_memfd_create, "procmem", 0);
  ASSERT_GE(mfd, 0);
  ASSERT_EQ(ftruncate(mfd, kPage), 0);
  void* p = MapPage(PROT_READ, MAP_SHARED, mfd);
  int fd = open("/proc/self/mem", O_RDWR);
  ASSERT_GE(fd, 0);
  EXPECT_THAT(pwrite(fd, "x", 1, reinterpret_cast<uintptr_t>(p)),
              SyscallFailsWithErrno(EIO));
  char c = 1;
  EXPECT_THAT(pread(mfd, &c, 1, 0), SyscallSucceedsWithValue(1));
  EXPECT_EQ(c, 0);
  close(fd);
  munmap(p, kPage);
  close(mfd);
}

// Unmapped addresses fail with EIO; a write that runs into one stops
// there.
TEST(ProcMem, UnmappedIsEIO) {
  char* p = static_cast<char*>(mmap(nullptr, 2 * kPage, PROT_READ | PROT_WRITE,
                                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(p, MAP_FAILED);
  ASSERT_EQ(munmap(p + kPage, kPage), 0);
  int fd = open("/proc/self/mem", O_RDWR);
  ASSERT_GE(fd, 0);
  char buf[16] = {};
  EXPECT_THAT(pread(fd, buf, 1, reinterpret_cast<uintptr_t>(p + kPage)),
              SyscallFailsWithErrno(EIO));
  EXPECT_THAT(pwrite(fd, buf, 1, reinterpret_cast<uintptr_t>(p + kPage)),
              SyscallFailsWithErrno(EIO));
  EXPECT_THAT(pwrite(fd, "abcdefgh", 8,
                     reinterpret_cast<uintptr_t>(p + kPage - 4)),
              SyscallSucceedsWithValue(4));
  EXPECT_EQ(memcmp(p + kPage - 4, "abcd", 4), 0);
  close(fd);
  munmap(p, kPage);
}

// write(2) advances the file offset, which is the address.
TEST(ProcMem, WriteAdvancesOffset) {
  char* p = static_cast<char*>(MapPage(PROT_READ | PROT_WRITE));
  int fd = open("/proc/self/mem", O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(lseek(fd, reinterpret_cast<uintptr_t>(p), SEEK_SET),
            reinterpret_cast<off_t>(p));
  EXPECT_THAT(write(fd, "ab", 2), SyscallSucceedsWithValue(2));
  EXPECT_THAT(write(fd, "cd", 2), SyscallSucceedsWithValue(2));
  EXPECT_EQ(memcmp(p, "abcd", 4), 0);
  close(fd);
  munmap(p, kPage);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
