// seqio MIB DIR: writes a MIB MiB file in DIR in 1 MiB writes, then reads it
// back in 1 MiB reads, and removes it; reports MiB/s of each direction.

#include <fcntl.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "test/benchmarks/workloads/bench_util.h"

namespace {
constexpr size_t kChunk = 1 << 20;
}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: seqio MIB DIR\n");
    return 2;
  }
  long mib = atol(argv[1]);
  if (mib <= 0) mib = 1;
  std::string path =
      std::string(argv[2]) + "/pyvisor-seqio-" + std::to_string(getpid());
  std::vector<char> buf(kChunk, 'y');

  int fd = open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) bench::Die("create");
  int64_t start = bench::NowNs();
  for (long i = 0; i < mib; ++i) {
    if (write(fd, buf.data(), kChunk) != static_cast<ssize_t>(kChunk)) {
      unlink(path.c_str());
      bench::Die("write");
    }
  }
  if (close(fd) != 0) bench::Die("close");
  double write_s = static_cast<double>(bench::NowNs() - start) / 1e9;

  fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) bench::Die("open");
  start = bench::NowNs();
  long got = 0;
  for (;;) {
    ssize_t n = read(fd, buf.data(), kChunk);
    if (n < 0) bench::Die("read");
    if (n == 0) break;
    got += n;
  }
  double read_s = static_cast<double>(bench::NowNs() - start) / 1e9;
  close(fd);
  unlink(path.c_str());
  if (got != mib * static_cast<long>(kChunk)) {
    fprintf(stderr, "read %ld bytes, wrote %ld MiB\n", got, mib);
    return 1;
  }
  bench::Report("write_mib_s", static_cast<double>(mib) / write_s);
  bench::Report("read_mib_s", static_cast<double>(mib) / read_s);
  return 0;
}
