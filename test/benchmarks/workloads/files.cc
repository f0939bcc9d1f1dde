// files SECONDS PATH: open+read+close and stat of one small file, in
// nanoseconds per operation. If PATH is a directory, a 4 KiB file is made in
// it first (and removed at the end); otherwise PATH is the file.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "test/benchmarks/workloads/bench_util.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: files SECONDS PATH\n");
    return 2;
  }
  int64_t budget = bench::DurationNs(argv[1]);
  std::string path = argv[2];
  struct stat st;
  if (stat(path.c_str(), &st) != 0) bench::Die("stat");
  bool made = S_ISDIR(st.st_mode);
  if (made) {
    path += "/pyvisor-bench-" + std::to_string(getpid());
    int fd = open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) bench::Die("create");
    char block[4096];
    memset(block, 'x', sizeof(block));
    if (write(fd, block, sizeof(block)) != sizeof(block)) bench::Die("write");
    if (close(fd) != 0) bench::Die("close");
  }

  const char* p = path.c_str();
  double orc = bench::TimePerOp(budget, [p] {
    char buf[4096];
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) bench::Die("open");
    if (read(fd, buf, sizeof(buf)) < 0) bench::Die("read");
    if (close(fd) != 0) bench::Die("close");
  });
  double stat_ns = bench::TimePerOp(budget, [p] {
    struct stat s;
    if (stat(p, &s) != 0) bench::Die("stat");
  });

  if (made && unlink(p) != 0) bench::Die("unlink");
  bench::Report("open_read_close_ns", orc);
  bench::Report("stat_ns", stat_ns);
  return 0;
}
