// select(2) and pselect6(2): descriptor sets, EBADF for closed descriptors,
// timeouts and the time left, the temporary signal mask (fs/select.c).
//
// Readiness sources are eventfds and pipes.

#include <fcntl.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/signal_util.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

constexpr int64_t kNanosPerSecond = 1000000000;
constexpr size_t kSigsetSize = sizeof(uint64_t);

int64_t MonotonicNanos() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * kNanosPerSecond + ts.tv_nsec;
}

long Select(int n, fd_set* r, fd_set* w, fd_set* e, struct timeval* tv) {
  return syscall(SYS_select, n, r, w, e, tv);
}

struct SigsetArg {
  const uint64_t* mask;
  size_t size;
};

long Pselect(int n, fd_set* r, fd_set* w, fd_set* e, struct timespec* ts,
             const SigsetArg* sig) {
  return syscall(SYS_pselect6, n, r, w, e, ts, sig);
}

FileDescriptor NewEventfd(unsigned int initval) {
  int fd = syscall(SYS_eventfd2, initval, EFD_NONBLOCK | EFD_CLOEXEC);
  EXPECT_THAT(fd, SyscallSucceeds());
  return FileDescriptor(fd);
}

long Tgkill(int sig) {
  return syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), sig);
}

uint64_t CurrentMask() {
  uint64_t m = 0;
  EXPECT_THAT(syscall(SYS_rt_sigprocmask, SIG_BLOCK, nullptr, &m, kSigsetSize),
              SyscallSucceeds());
  return m;
}

std::atomic<int> handled{0};
void CountingHandler(int) { handled++; }

TEST(SelectTest, NegativeNfdsIsEinval) {
  struct timeval tv = {0, 0};
  EXPECT_THAT(Select(-1, nullptr, nullptr, nullptr, &tv),
              SyscallFailsWithErrno(EINVAL));
}

TEST(SelectTest, NoSetsTimesOut) {
  struct timeval tv = {0, 10000};
  const int64_t start = MonotonicNanos();
  EXPECT_THAT(Select(0, nullptr, nullptr, nullptr, &tv),
              SyscallSucceedsWithValue(0));
  EXPECT_GE(MonotonicNanos() - start, 10 * 1000 * 1000);
  // The time left is written back.
  EXPECT_EQ(tv.tv_sec, 0);
  EXPECT_EQ(tv.tv_usec, 0);
}

TEST(SelectTest, InvalidTimevalIsEinval) {
  struct timeval cases[] = {{-1, 0}, {0, -1}};
  for (struct timeval& tv : cases) {
    EXPECT_THAT(Select(0, nullptr, nullptr, nullptr, &tv),
                SyscallFailsWithErrno(EINVAL));
  }
}

// Microseconds past a second carry into the seconds.
TEST(SelectTest, LargeMicrosecondsAreNormalized) {
  FileDescriptor efd = NewEventfd(1);
  fd_set r;
  FD_ZERO(&r);
  FD_SET(efd.get(), &r);
  struct timeval tv = {0, 3000000};
  ASSERT_THAT(Select(efd.get() + 1, &r, nullptr, nullptr, &tv),
              SyscallSucceedsWithValue(1));
  EXPECT_EQ(tv.tv_sec, 2);
  EXPECT_GT(tv.tv_usec, 0);
}

TEST(SelectTest, ClosedFdIsEbadf) {
  FileDescriptor efd = NewEventfd(0);
  const int closed = efd.get();
  efd.reset();
  for (int which = 0; which < 3; which++) {
    fd_set sets[3];
    for (fd_set& s : sets) FD_ZERO(&s);
    FD_SET(closed, &sets[which]);
    struct timeval tv = {0, 0};
    EXPECT_THAT(Select(closed + 1, &sets[0], &sets[1], &sets[2], &tv),
                SyscallFailsWithErrno(EBADF))
        << which;
  }
}

// Bits at or above nfds are not looked at.
TEST(SelectTest, BitsAboveNfdsAreIgnored) {
  FileDescriptor efd = NewEventfd(0);
  const int closed = efd.get();
  efd.reset();
  fd_set r;
  FD_ZERO(&r);
  FD_SET(closed, &r);
  struct timeval tv = {0, 0};
  EXPECT_THAT(Select(closed, &r, nullptr, nullptr, &tv),
              SyscallSucceedsWithValue(0));
}

TEST(SelectTest, ReadyDescriptorsAreMarked) {
  FileDescriptor readable = NewEventfd(1);
  FileDescriptor empty = NewEventfd(0);
  const int n = std::max(readable.get(), empty.get()) + 1;
  fd_set r, w, e;
  FD_ZERO(&r);
  FD_ZERO(&w);
  FD_ZERO(&e);
  FD_SET(readable.get(), &r);
  FD_SET(empty.get(), &r);
  FD_SET(empty.get(), &w);
  FD_SET(readable.get(), &e);
  struct timeval tv = {0, 0};
  // readable is readable; empty is writable: two.
  ASSERT_THAT(Select(n, &r, &w, &e, &tv), SyscallSucceedsWithValue(2));
  EXPECT_TRUE(FD_ISSET(readable.get(), &r));
  EXPECT_FALSE(FD_ISSET(empty.get(), &r));
  EXPECT_TRUE(FD_ISSET(empty.get(), &w));
  EXPECT_FALSE(FD_ISSET(readable.get(), &e));
}

// The count is of set bits: one descriptor both readable and writable
// counts twice.
TEST(SelectTest, CountsEachSet) {
  FileDescriptor efd = NewEventfd(1);
  fd_set r, w;
  FD_ZERO(&r);
  FD_ZERO(&w);
  FD_SET(efd.get(), &r);
  FD_SET(efd.get(), &w);
  struct timeval tv = {0, 0};
  EXPECT_THAT(Select(efd.get() + 1, &r, &w, nullptr, &tv),
              SyscallSucceedsWithValue(2));
}

TEST(SelectTest, NothingReadyClearsSets) {
  FileDescriptor efd = NewEventfd(0);
  fd_set r;
  FD_ZERO(&r);
  FD_SET(efd.get(), &r);
  struct timeval tv = {0, 1000};
  ASSERT_THAT(Select(efd.get() + 1, &r, nullptr, nullptr, &tv),
              SyscallSucceedsWithValue(0));
  EXPECT_FALSE(FD_ISSET(efd.get(), &r));
}

TEST(SelectTest, BadSetAddressIsEfault) {
  FileDescriptor efd = NewEventfd(1);
  struct timeval tv = {0, 0};
  EXPECT_THAT(Select(efd.get() + 1, reinterpret_cast<fd_set*>(8), nullptr,
                     nullptr, &tv),
              SyscallFailsWithErrno(EFAULT));
  EXPECT_THAT(Select(1, nullptr, nullptr, nullptr,
                     reinterpret_cast<struct timeval*>(8)),
              SyscallFailsWithErrno(EFAULT));
}

// nfds beyond the descriptor table is cut to the table's size, not an
// error.
TEST(SelectTest, HugeNfdsIsClamped) {
  struct timeval tv = {0, 0};
  EXPECT_THAT(Select(1 << 30, nullptr, nullptr, nullptr, &tv),
              SyscallSucceedsWithValue(0));
}

TEST(SelectTest, RemainingTimeIsWrittenBack) {
  FileDescriptor efd = NewEventfd(1);
  fd_set r;
  FD_ZERO(&r);
  FD_SET(efd.get(), &r);
  struct timeval tv = {5, 0};
  ASSERT_THAT(Select(efd.get() + 1, &r, nullptr, nullptr, &tv),
              SyscallSucceedsWithValue(1));
  EXPECT_GE(tv.tv_sec, 4);
  EXPECT_LE(tv.tv_sec, 5);
  EXPECT_LT(tv.tv_usec, 1000000);
}

TEST(SelectTest, WokenByEventfdWrite) {
  FileDescriptor efd = NewEventfd(0);
  std::thread writer([&] {
    usleep(10000);
    uint64_t one = 1;
    EXPECT_THAT(write(efd.get(), &one, sizeof(one)), SyscallSucceeds());
  });
  fd_set r;
  FD_ZERO(&r);
  FD_SET(efd.get(), &r);
  EXPECT_THAT(Select(efd.get() + 1, &r, nullptr, nullptr, nullptr),
              SyscallSucceedsWithValue(1));
  writer.join();
}

// select is interrupted by a handled signal even with SA_RESTART
// (-ERESTARTNOHAND).
TEST(SelectTest, InterruptedBySignal) {
  struct sigaction sa = {};
  sa.sa_handler = CountingHandler;
  sa.sa_flags = SA_RESTART;
  ScopedSigaction scoped(SIGALRM, sa);
  handled = 0;
  struct itimerval it = {{0, 0}, {0, 20000}};
  ASSERT_THAT(setitimer(ITIMER_REAL, &it, nullptr), SyscallSucceeds());
  struct timeval tv = {5, 0};
  EXPECT_THAT(Select(0, nullptr, nullptr, nullptr, &tv),
              SyscallFailsWithErrno(EINTR));
  EXPECT_EQ(handled, 1);
  EXPECT_LT(tv.tv_sec, 5);
}

TEST(PselectTest, InvalidTimespecIsEinval) {
  struct timespec cases[] = {{0, kNanosPerSecond}, {-1, 0}, {0, -1}};
  for (struct timespec& ts : cases) {
    EXPECT_THAT(Pselect(0, nullptr, nullptr, nullptr, &ts, nullptr),
                SyscallFailsWithErrno(EINVAL));
  }
}

TEST(PselectTest, TimesOutAndWritesBack) {
  struct timespec ts = {0, 10 * 1000 * 1000};
  const int64_t start = MonotonicNanos();
  EXPECT_THAT(Pselect(0, nullptr, nullptr, nullptr, &ts, nullptr),
              SyscallSucceedsWithValue(0));
  EXPECT_GE(MonotonicNanos() - start, 10 * 1000 * 1000);
  EXPECT_EQ(ts.tv_sec, 0);
  EXPECT_EQ(ts.tv_nsec, 0);
}

TEST(PselectTest, BadSigsetSizeIsEinval) {
  uint64_t mask = 0;
  SigsetArg arg = {&mask, 4};
  struct timespec ts = {0, 0};
  EXPECT_THAT(Pselect(0, nullptr, nullptr, nullptr, &ts, &arg),
              SyscallFailsWithErrno(EINVAL));
  // A null mask makes the size irrelevant.
  arg = {nullptr, 4};
  EXPECT_THAT(Pselect(0, nullptr, nullptr, nullptr, &ts, &arg),
              SyscallSucceedsWithValue(0));
}

TEST(PselectTest, BadSigsetArgIsEfault) {
  struct timespec ts = {0, 0};
  EXPECT_THAT(Pselect(0, nullptr, nullptr, nullptr, &ts,
                      reinterpret_cast<SigsetArg*>(8)),
              SyscallFailsWithErrno(EFAULT));
  SigsetArg arg = {reinterpret_cast<uint64_t*>(8), kSigsetSize};
  EXPECT_THAT(Pselect(0, nullptr, nullptr, nullptr, &ts, &arg),
              SyscallFailsWithErrno(EFAULT));
}

TEST(PselectTest, SignalUnblockedByMaskInterrupts) {
  struct sigaction sa = {};
  sa.sa_handler = CountingHandler;
  sa.sa_flags = SA_RESTART;
  ScopedSigaction scoped(SIGUSR1, sa);
  ScopedSignalMask block(SIG_BLOCK, SignalSet({SIGUSR1}));
  const uint64_t before = CurrentMask();
  handled = 0;
  ASSERT_THAT(Tgkill(SIGUSR1), SyscallSucceeds());
  uint64_t mask = 0;
  SigsetArg arg = {&mask, kSigsetSize};
  struct timespec ts = {10, 0};
  EXPECT_THAT(Pselect(0, nullptr, nullptr, nullptr, &ts, &arg),
              SyscallFailsWithErrno(EINTR));
  EXPECT_EQ(handled, 1);
  EXPECT_EQ(CurrentMask(), before);
  // The time left was written back.
  EXPECT_LE(ts.tv_sec, 10);
}

// Interrupted, the sets are left as they were passed (core_sys_select does
// not write them back).
TEST(PselectTest, InterruptedLeavesSets) {
  struct sigaction sa = {};
  sa.sa_handler = CountingHandler;
  ScopedSigaction scoped(SIGUSR1, sa);
  ScopedSignalMask block(SIG_BLOCK, SignalSet({SIGUSR1}));
  FileDescriptor efd = NewEventfd(0);
  fd_set r;
  FD_ZERO(&r);
  FD_SET(efd.get(), &r);
  ASSERT_THAT(Tgkill(SIGUSR1), SyscallSucceeds());
  uint64_t mask = 0;
  SigsetArg arg = {&mask, kSigsetSize};
  EXPECT_THAT(Pselect(efd.get() + 1, &r, nullptr, nullptr, nullptr, &arg),
              SyscallFailsWithErrno(EINTR));
  EXPECT_TRUE(FD_ISSET(efd.get(), &r));
}

TEST(PselectTest, MaskIsRestored) {
  ScopedSignalMask block(SIG_BLOCK, SignalSet({SIGUSR2}));
  const uint64_t before = CurrentMask();
  uint64_t mask = 0;
  SigsetArg arg = {&mask, kSigsetSize};
  struct timespec ts = {0, 1000};
  ASSERT_THAT(Pselect(0, nullptr, nullptr, nullptr, &ts, &arg),
              SyscallSucceedsWithValue(0));
  EXPECT_EQ(CurrentMask(), before);
}

TEST(SelectPipeTest, HangupIsReadable) {
  int fds[2];
  ASSERT_THAT(pipe2(fds, O_CLOEXEC), SyscallSucceeds());
  FileDescriptor r(fds[0]), w(fds[1]);
  w.reset();
  fd_set rs;
  FD_ZERO(&rs);
  FD_SET(r.get(), &rs);
  struct timeval tv = {0, 0};
  ASSERT_THAT(Select(r.get() + 1, &rs, nullptr, nullptr, &tv),
              SyscallSucceedsWithValue(1));
  EXPECT_TRUE(FD_ISSET(r.get(), &rs));
}

TEST(SelectPipeTest, BrokenPipeIsWritable) {
  int fds[2];
  ASSERT_THAT(pipe2(fds, O_CLOEXEC), SyscallSucceeds());
  FileDescriptor r(fds[0]), w(fds[1]);
  r.reset();
  fd_set ws;
  FD_ZERO(&ws);
  FD_SET(w.get(), &ws);
  struct timeval tv = {0, 0};
  ASSERT_THAT(Select(w.get() + 1, nullptr, &ws, nullptr, &tv),
              SyscallSucceedsWithValue(1));
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
