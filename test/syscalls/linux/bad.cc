// System calls that do not exist, and pointers that point nowhere: the call
// fails cleanly and the program carries on.

#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

// Addresses no user pointer may have: page zero, kernel space, the
// non-canonical hole, and the last page of the address space.
void* const kBadPointers[] = {
    reinterpret_cast<void*>(1),
    reinterpret_cast<void*>(0x0000800000000000ULL),
    reinterpret_cast<void*>(0xffff800000000000ULL),
    reinterpret_cast<void*>(0xfffffffffffff000ULL),
    reinterpret_cast<void*>(-1L),
};

TEST(BadSyscallTest, UnknownNumbersAreEnosys) {
  // 400 lies in the gap between the last of the old numbering (rseq at 334,
  // then uretprobe and uprobe, which raise SIGILL when called directly) and
  // pidfd_send_signal (424).
  for (long nr : {400L, 423L, 1000L, 100000L, -1L}) {
    EXPECT_THAT(syscall(nr), SyscallFailsWithErrno(ENOSYS)) << "number " << nr;
  }
  // The process is still here and working.
  EXPECT_THAT(syscall(SYS_getpid), SyscallSucceedsWithValue(getpid()));
}

// Arguments to an unknown system call do not matter.
TEST(BadSyscallTest, UnknownWithArguments) {
  EXPECT_THAT(syscall(1000, 1, 2, 3, 4, 5, 6), SyscallFailsWithErrno(ENOSYS));
}

// The x32 system calls (512 to 547) do not exist for 64-bit callers.
TEST(BadSyscallTest, X32NumbersAreEnosys) {
  EXPECT_THAT(syscall(512), SyscallFailsWithErrno(ENOSYS));
  EXPECT_THAT(syscall(547), SyscallFailsWithErrno(ENOSYS));
}

TEST(BadSyscallTest, ManyUnknownCalls) {
  for (int i = 0; i < 1000; i++) {
    ASSERT_THAT(syscall(1000 + i), SyscallFailsWithErrno(ENOSYS)) << i;
  }
}

TEST(BadPointerTest, ClockGettime) {
  for (void* p : kBadPointers) {
    EXPECT_THAT(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, p),
                SyscallFailsWithErrno(EFAULT))
        << p;
  }
}

TEST(BadPointerTest, Uname) {
  for (void* p : kBadPointers) {
    EXPECT_THAT(syscall(SYS_uname, p), SyscallFailsWithErrno(EFAULT)) << p;
  }
  struct utsname u;
  EXPECT_THAT(syscall(SYS_uname, &u), SyscallSucceeds());
}

TEST(BadPointerTest, Getrandom) {
  for (void* p : kBadPointers) {
    EXPECT_THAT(syscall(SYS_getrandom, p, 8, 0), SyscallFailsWithErrno(EFAULT))
        << p;
  }
}

TEST(BadPointerTest, Write) {
  for (void* p : kBadPointers) {
    EXPECT_THAT(syscall(SYS_write, STDOUT_FILENO, p, 1),
                SyscallFailsWithErrno(EFAULT))
        << p;
  }
}

TEST(BadPointerTest, RtSigaction) {
  for (void* p : kBadPointers) {
    EXPECT_THAT(syscall(SYS_rt_sigaction, SIGUSR1, p, nullptr, 8),
                SyscallFailsWithErrno(EFAULT))
        << p;
  }
}

TEST(BadPointerTest, Nanosleep) {
  for (void* p : kBadPointers) {
    EXPECT_THAT(syscall(SYS_nanosleep, p, nullptr),
                SyscallFailsWithErrno(EFAULT))
        << p;
  }
}

// A buffer that starts in mapped memory and runs into a hole.
TEST(BadPointerTest, StraddlingTheEndOfAMapping) {
  const size_t page = sysconf(_SC_PAGESIZE);
  char* m = static_cast<char*>(mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE,
                                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_THAT(m, SyscallSucceeds());
  ASSERT_THAT(munmap(m + page, page), SyscallSucceeds());

  // A struct timespec is 16 bytes; put it 8 bytes before the hole.
  EXPECT_THAT(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, m + page - 8),
              SyscallFailsWithErrno(EFAULT));
  // A struct utsname is 390 bytes.
  EXPECT_THAT(syscall(SYS_uname, m + page - 100),
              SyscallFailsWithErrno(EFAULT));

  // Entirely inside, it works.
  EXPECT_THAT(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, m + page - 16),
              SyscallSucceeds());
  EXPECT_THAT(munmap(m, page), SyscallSucceeds());
}

// A read-only buffer cannot receive a result.
TEST(BadPointerTest, ReadOnlyDestination) {
  const size_t page = sysconf(_SC_PAGESIZE);
  void* m = mmap(nullptr, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_THAT(m, SyscallSucceeds());
  EXPECT_THAT(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, m),
              SyscallFailsWithErrno(EFAULT));
  EXPECT_THAT(syscall(SYS_uname, m), SyscallFailsWithErrno(EFAULT));
  EXPECT_THAT(syscall(SYS_getrandom, m, 8, 0), SyscallFailsWithErrno(EFAULT));
  EXPECT_THAT(munmap(m, page), SyscallSucceeds());
}

// A source buffer may be read-only, but not PROT_NONE.
TEST(BadPointerTest, ProtNoneSource) {
  const size_t page = sysconf(_SC_PAGESIZE);
  void* m = mmap(nullptr, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_THAT(m, SyscallSucceeds());
  // An empty line from read-only memory... of NUL bytes; write zero bytes of
  // it to keep the log clean, then one byte from PROT_NONE.
  EXPECT_THAT(syscall(SYS_write, STDOUT_FILENO, m, 0), SyscallSucceeds());
  const struct timespec* ts = static_cast<const struct timespec*>(m);
  EXPECT_THAT(syscall(SYS_nanosleep, ts, nullptr), SyscallSucceeds());
  ASSERT_THAT(mprotect(m, page, PROT_NONE), SyscallSucceeds());
  EXPECT_THAT(syscall(SYS_nanosleep, ts, nullptr),
              SyscallFailsWithErrno(EFAULT));
  EXPECT_THAT(munmap(m, page), SyscallSucceeds());
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
