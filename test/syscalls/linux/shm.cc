// System V shared memory: shmget(2), shmat(2), shmdt(2), shmctl(2).
//
// Natively these create host segments: every test removes what it creates.

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/multiprocess_util.h"
#include "test/util/test_util.h"

namespace pyvisor {
namespace testing {
namespace {

const size_t kPage = sysconf(_SC_PAGESIZE);

// Segment removes a segment when it goes out of scope.
class Segment {
 public:
  explicit Segment(int id) : id_(id) {}
  ~Segment() {
    if (id_ >= 0) shmctl(id_, IPC_RMID, nullptr);
  }
  int get() const { return id_; }

 private:
  int id_;
};

// A key no other segment is likely to have; creation uses IPC_EXCL so a
// collision shows up as EEXIST and the next key is tried.
key_t NextKey() {
  static int n = 0;
  return static_cast<key_t>(0x50000000 | ((getpid() & 0xffff) << 8) | n++);
}

int CreateKeyed(key_t* key, size_t size, int mode = 0600) {
  for (int i = 0; i < 64; i++) {
    *key = NextKey();
    int id = shmget(*key, size, IPC_CREAT | IPC_EXCL | mode);
    if (id >= 0 || errno != EEXIST) return id;
  }
  return -1;
}

TEST(ShmTest, AttachWriteReadDetach) {
  Segment seg(shmget(IPC_PRIVATE, 2 * kPage, IPC_CREAT | 0600));
  ASSERT_THAT(seg.get(), SyscallSucceeds());
  char* a = static_cast<char*>(shmat(seg.get(), nullptr, 0));
  ASSERT_NE(a, reinterpret_cast<char*>(-1)) << strerror(errno);
  char* b = static_cast<char*>(shmat(seg.get(), nullptr, 0));
  ASSERT_NE(b, reinterpret_cast<char*>(-1)) << strerror(errno);
  ASSERT_NE(a, b);
  // New segments are zeroed.
  EXPECT_EQ(a[0], 0);
  EXPECT_EQ(a[2 * kPage - 1], 0);
  strcpy(a + kPage, "shared");
  EXPECT_STREQ(b + kPage, "shared");

  struct shmid_ds ds = {};
  ASSERT_THAT(shmctl(seg.get(), IPC_STAT, &ds), SyscallSucceeds());
  EXPECT_EQ(ds.shm_segsz, 2 * kPage);
  EXPECT_EQ(ds.shm_nattch, 2u);
  EXPECT_EQ(ds.shm_cpid, getpid());
  EXPECT_EQ(ds.shm_lpid, getpid());
  EXPECT_EQ(ds.shm_perm.mode & 0777, 0600u);
  EXPECT_EQ(ds.shm_perm.uid, geteuid());
  EXPECT_EQ(ds.shm_perm.cuid, geteuid());
  EXPECT_NE(ds.shm_atime, 0);

  ASSERT_THAT(shmdt(a), SyscallSucceeds());
  ASSERT_THAT(shmctl(seg.get(), IPC_STAT, &ds), SyscallSucceeds());
  EXPECT_EQ(ds.shm_nattch, 1u);
  EXPECT_NE(ds.shm_dtime, 0);
  // The detached address is gone.
  EXPECT_THAT(shmdt(a), SyscallFailsWithErrno(EINVAL));
  ASSERT_THAT(shmdt(b), SyscallSucceeds());
}

TEST(ShmTest, KeyedLookup) {
  key_t key;
  Segment seg(CreateKeyed(&key, kPage));
  ASSERT_THAT(seg.get(), SyscallSucceeds());
  EXPECT_THAT(shmget(key, kPage, 0), SyscallSucceedsWithValue(seg.get()));
  EXPECT_THAT(shmget(key, 0, 0), SyscallSucceedsWithValue(seg.get()));
  EXPECT_THAT(shmget(key, kPage, IPC_CREAT), SyscallSucceedsWithValue(seg.get()));
  EXPECT_THAT(shmget(key, kPage, IPC_CREAT | IPC_EXCL),
              SyscallFailsWithErrno(EEXIST));
  // Asking for more than the segment holds.
  EXPECT_THAT(shmget(key, 2 * kPage, 0), SyscallFailsWithErrno(EINVAL));
  struct shmid_ds ds = {};
  ASSERT_THAT(shmctl(seg.get(), IPC_STAT, &ds), SyscallSucceeds());
  EXPECT_EQ(ds.shm_perm.__key, key);
}

TEST(ShmTest, MissingKey) {
  key_t key = NextKey();
  while (shmget(key, kPage, 0) >= 0) key = NextKey();
  EXPECT_THAT(shmget(key, kPage, 0), SyscallFailsWithErrno(ENOENT));
}

TEST(ShmTest, InvalidSizes) {
  EXPECT_THAT(shmget(IPC_PRIVATE, 0, IPC_CREAT | 0600),
              SyscallFailsWithErrno(EINVAL));
}

TEST(ShmTest, InvalidIds) {
  EXPECT_THAT(shmat(-1, nullptr, 0), SyscallFailsWithErrno(EINVAL));
  struct shmid_ds ds;
  EXPECT_THAT(shmctl(-1, IPC_STAT, &ds), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(shmctl(0x7ffffff0, IPC_RMID, nullptr),
              SyscallFailsWithErrno(EINVAL));
}

TEST(ShmTest, RemoveWhileAttached) {
  key_t key;
  int id = CreateKeyed(&key, kPage);
  ASSERT_THAT(id, SyscallSucceeds());
  char* a = static_cast<char*>(shmat(id, nullptr, 0));
  ASSERT_NE(a, reinterpret_cast<char*>(-1)) << strerror(errno);
  a[0] = 'x';
  ASSERT_THAT(shmctl(id, IPC_RMID, nullptr), SyscallSucceeds());

  // The key is free at once; the id lives on until the last detach.
  EXPECT_THAT(shmget(key, kPage, 0), SyscallFailsWithErrno(ENOENT));
  struct shmid_ds ds = {};
  ASSERT_THAT(shmctl(id, IPC_STAT, &ds), SyscallSucceeds());
  EXPECT_EQ(ds.shm_perm.__key, IPC_PRIVATE);
  EXPECT_TRUE(ds.shm_perm.mode & SHM_DEST);
  EXPECT_EQ(ds.shm_nattch, 1u);
  EXPECT_EQ(a[0], 'x');
  // Linux lets a removed segment be attached again by id.
  char* b = static_cast<char*>(shmat(id, nullptr, 0));
  ASSERT_NE(b, reinterpret_cast<char*>(-1)) << strerror(errno);
  EXPECT_EQ(b[0], 'x');
  ASSERT_THAT(shmdt(b), SyscallSucceeds());

  ASSERT_THAT(shmdt(a), SyscallSucceeds());
  EXPECT_THAT(shmctl(id, IPC_STAT, &ds), SyscallFailsWithErrno(EINVAL));
}

TEST(ShmTest, MunmapDetaches) {
  Segment seg(shmget(IPC_PRIVATE, kPage, IPC_CREAT | 0600));
  ASSERT_THAT(seg.get(), SyscallSucceeds());
  void* a = shmat(seg.get(), nullptr, 0);
  ASSERT_NE(a, reinterpret_cast<void*>(-1)) << strerror(errno);
  ASSERT_THAT(munmap(a, kPage), SyscallSucceeds());
  struct shmid_ds ds = {};
  ASSERT_THAT(shmctl(seg.get(), IPC_STAT, &ds), SyscallSucceeds());
  EXPECT_EQ(ds.shm_nattch, 0u);
}

TEST(ShmTest, ForkSharesAndExitDetaches) {
  Segment seg(shmget(IPC_PRIVATE, kPage, IPC_CREAT | 0600));
  ASSERT_THAT(seg.get(), SyscallSucceeds());
  volatile int* p = static_cast<int*>(shmat(seg.get(), nullptr, 0));
  ASSERT_NE(p, reinterpret_cast<int*>(-1)) << strerror(errno);
  int pipefd[2];
  ASSERT_THAT(pipe(pipefd), SyscallSucceeds());
  pid_t pid = fork();
  if (pid == 0) {
    close(pipefd[1]);
    struct shmid_ds ds = {};
    if (shmctl(seg.get(), IPC_STAT, &ds) != 0 || ds.shm_nattch != 2) _exit(1);
    p[0] = 42;
    char c;
    // Wait until the parent has looked.
    if (read(pipefd[0], &c, 1) != 0) _exit(2);
    _exit(0);
  }
  ASSERT_THAT(pid, SyscallSucceeds());
  close(pipefd[0]);
  while (p[0] != 42) sched_yield();
  close(pipefd[1]);
  int status;
  ASSERT_THAT(waitpid(pid, &status, 0), SyscallSucceedsWithValue(pid));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  struct shmid_ds ds = {};
  ASSERT_THAT(shmctl(seg.get(), IPC_STAT, &ds), SyscallSucceeds());
  EXPECT_EQ(ds.shm_nattch, 1u);
  ASSERT_THAT(shmdt(const_cast<int*>(p)), SyscallSucceeds());
}

TEST(ShmTest, ExecDetaches) {
  Segment seg(shmget(IPC_PRIVATE, kPage, IPC_CREAT | 0600));
  ASSERT_THAT(seg.get(), SyscallSucceeds());
  const std::string helper = HelperPath();
  pid_t pid = fork();
  if (pid == 0) {
    if (shmat(seg.get(), nullptr, 0) == reinterpret_cast<void*>(-1)) _exit(1);
    char* const argv[] = {const_cast<char*>(helper.c_str()), nullptr};
    char* const envp[] = {const_cast<char*>("PV_ACTION=pause"), nullptr};
    execve(helper.c_str(), argv, envp);
    _exit(2);
  }
  ASSERT_THAT(pid, SyscallSucceeds());
  // The child attached, then lost the attachment with its old address
  // space while it lives on in the new program.
  bool detached = false;
  for (int i = 0; i < 20000 && !detached; i++) {
    struct shmid_ds ds = {};
    ASSERT_THAT(shmctl(seg.get(), IPC_STAT, &ds), SyscallSucceeds());
    detached = ds.shm_lpid == pid && ds.shm_nattch == 0 && ds.shm_atime != 0;
    if (!detached) usleep(1000);
  }
  EXPECT_THAT(waitpid(pid, nullptr, WNOHANG), SyscallSucceedsWithValue(0));
  EXPECT_TRUE(detached);
  kill(pid, SIGKILL);
  ASSERT_THAT(waitpid(pid, nullptr, 0), SyscallSucceedsWithValue(pid));
}

TEST(ShmTest, ReadOnlyAttach) {
  Segment seg(shmget(IPC_PRIVATE, kPage, IPC_CREAT | 0600));
  ASSERT_THAT(seg.get(), SyscallSucceeds());
  char* a = static_cast<char*>(shmat(seg.get(), nullptr, SHM_RDONLY));
  ASSERT_NE(a, reinterpret_cast<char*>(-1)) << strerror(errno);
  EXPECT_EQ(a[0], 0);
  // A read-only attach can never become writable.
  EXPECT_THAT(mprotect(a, kPage, PROT_READ | PROT_WRITE),
              SyscallFailsWithErrno(EACCES));
  pid_t pid = fork();
  if (pid == 0) {
    a[0] = 1;
    _exit(0);
  }
  ASSERT_THAT(pid, SyscallSucceeds());
  int status;
  ASSERT_THAT(waitpid(pid, &status, 0), SyscallSucceedsWithValue(pid));
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV) << status;
  ASSERT_THAT(shmdt(a), SyscallSucceeds());
}

TEST(ShmTest, FixedAddress) {
  Segment seg(shmget(IPC_PRIVATE, kPage, IPC_CREAT | 0600));
  ASSERT_THAT(seg.get(), SyscallSucceeds());
  char* m = static_cast<char*>(mmap(nullptr, 2 * kPage, PROT_READ | PROT_WRITE,
                                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(m, MAP_FAILED);
  // Over a mapping only with SHM_REMAP.
  EXPECT_EQ(shmat(seg.get(), m, 0), reinterpret_cast<void*>(-1));
  EXPECT_EQ(errno, EINVAL);
  // Unaligned without SHM_RND.
  EXPECT_EQ(shmat(seg.get(), m + 1, SHM_REMAP), reinterpret_cast<void*>(-1));
  EXPECT_EQ(errno, EINVAL);
  // SHM_REMAP needs an address.
  EXPECT_EQ(shmat(seg.get(), nullptr, SHM_REMAP), reinterpret_cast<void*>(-1));
  EXPECT_EQ(errno, EINVAL);
  void* a = shmat(seg.get(), m + kPage + 1, SHM_REMAP | SHM_RND);
  ASSERT_EQ(a, m + kPage) << strerror(errno);
  static_cast<char*>(a)[0] = 'z';
  // shmdt needs the attach address exactly.
  EXPECT_THAT(shmdt(m + kPage + 1), SyscallFailsWithErrno(EINVAL));
  EXPECT_THAT(shmdt(m), SyscallFailsWithErrno(EINVAL));
  ASSERT_THAT(shmdt(a), SyscallSucceeds());
  ASSERT_THAT(munmap(m, kPage), SyscallSucceeds());
}

TEST(ShmTest, PartialPageSegment) {
  Segment seg(shmget(IPC_PRIVATE, 100, IPC_CREAT | 0600));
  ASSERT_THAT(seg.get(), SyscallSucceeds());
  char* a = static_cast<char*>(shmat(seg.get(), nullptr, 0));
  ASSERT_NE(a, reinterpret_cast<char*>(-1)) << strerror(errno);
  // The whole last page is usable.
  a[kPage - 1] = 'e';
  EXPECT_EQ(a[kPage - 1], 'e');
  struct shmid_ds ds = {};
  ASSERT_THAT(shmctl(seg.get(), IPC_STAT, &ds), SyscallSucceeds());
  EXPECT_EQ(ds.shm_segsz, 100u);
  ASSERT_THAT(shmdt(a), SyscallSucceeds());
}

TEST(ShmTest, SetChangesMode) {
  Segment seg(shmget(IPC_PRIVATE, kPage, IPC_CREAT | 0600));
  ASSERT_THAT(seg.get(), SyscallSucceeds());
  struct shmid_ds ds = {};
  ASSERT_THAT(shmctl(seg.get(), IPC_STAT, &ds), SyscallSucceeds());
  ds.shm_perm.mode = 0640 | 01000;  // The SHM_DEST bit is not settable.
  ASSERT_THAT(shmctl(seg.get(), IPC_SET, &ds), SyscallSucceeds());
  ASSERT_THAT(shmctl(seg.get(), IPC_STAT, &ds), SyscallSucceeds());
  EXPECT_EQ(ds.shm_perm.mode, 0640u);
  EXPECT_THAT(shmctl(seg.get(), IPC_SET, nullptr),
              SyscallFailsWithErrno(EFAULT));
}

TEST(ShmTest, LockUnlock) {
  SKIP_IF(geteuid() != 0);
  Segment seg(shmget(IPC_PRIVATE, kPage, IPC_CREAT | 0600));
  ASSERT_THAT(seg.get(), SyscallSucceeds());
  ASSERT_THAT(shmctl(seg.get(), SHM_LOCK, nullptr), SyscallSucceeds());
  struct shmid_ds ds = {};
  ASSERT_THAT(shmctl(seg.get(), IPC_STAT, &ds), SyscallSucceeds());
  EXPECT_TRUE(ds.shm_perm.mode & SHM_LOCKED);
  ASSERT_THAT(shmctl(seg.get(), SHM_UNLOCK, nullptr), SyscallSucceeds());
  ASSERT_THAT(shmctl(seg.get(), IPC_STAT, &ds), SyscallSucceeds());
  EXPECT_FALSE(ds.shm_perm.mode & SHM_LOCKED);
}

TEST(ShmTest, InfoAndStat) {
  Segment seg(shmget(IPC_PRIVATE, kPage, IPC_CREAT | 0600));
  ASSERT_THAT(seg.get(), SyscallSucceeds());
  struct shminfo info = {};
  int max_index = shmctl(0, IPC_INFO, reinterpret_cast<struct shmid_ds*>(&info));
  ASSERT_THAT(max_index, SyscallSucceeds());
  EXPECT_GT(info.shmmni, 0u);
  EXPECT_GE(info.shmmax, kPage);
  struct shm_info sinfo = {};
  ASSERT_THAT(shmctl(0, SHM_INFO, reinterpret_cast<struct shmid_ds*>(&sinfo)),
              SyscallSucceedsWithValue(max_index));
  EXPECT_GE(sinfo.used_ids, 1);
  // SHM_STAT takes an index and returns the id; some index finds ours.
  bool found = false;
  for (int i = 0; i <= max_index; i++) {
    struct shmid_ds ds = {};
    int id = shmctl(i, SHM_STAT, &ds);
    if (id == seg.get()) {
      found = true;
      EXPECT_EQ(ds.shm_segsz, kPage);
    }
  }
  EXPECT_TRUE(found);
}

TEST(ShmTest, ProcMapsNamesSegment) {
  Segment seg(shmget(IPC_PRIVATE, kPage, IPC_CREAT | 0600));
  ASSERT_THAT(seg.get(), SyscallSucceeds());
  void* a = shmat(seg.get(), nullptr, 0);
  ASSERT_NE(a, reinterpret_cast<void*>(-1)) << strerror(errno);
  std::ifstream maps("/proc/self/maps");
  std::string line;
  bool found = false;
  while (std::getline(maps, line)) {
    if (line.find("/SYSV00000000") != std::string::npos &&
        strtoul(line.c_str(), nullptr, 16) == reinterpret_cast<uintptr_t>(a)) {
      found = true;
      EXPECT_NE(line.find(" rw-s "), std::string::npos) << line;
    }
  }
  EXPECT_TRUE(found);
  ASSERT_THAT(shmdt(a), SyscallSucceeds());
}

TEST(ShmTest, ProcSysvipc) {
  Segment seg(shmget(IPC_PRIVATE, 12345, IPC_CREAT | 0600));
  ASSERT_THAT(seg.get(), SyscallSucceeds());
  std::ifstream f("/proc/sysvipc/shm");
  ASSERT_TRUE(f.good());
  std::string line;
  std::getline(f, line);
  EXPECT_NE(line.find("shmid"), std::string::npos);
  bool found = false;
  while (std::getline(f, line)) {
    std::istringstream in(line);
    long key, id;
    unsigned mode;
    unsigned long size;
    in >> key >> id >> std::oct >> mode >> std::dec >> size;
    if (id == seg.get()) {
      found = true;
      EXPECT_EQ(size, 12345u);
      EXPECT_EQ(mode, 0600u);
    }
  }
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace testing
}  // namespace pyvisor
