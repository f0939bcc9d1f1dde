// getppid SECONDS: the system call round trip, in nanoseconds per call,
// measured inside the workload so that sandbox start-up does not count.

#include <sys/syscall.h>
#include <unistd.h>

#include "test/benchmarks/workloads/bench_util.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: getppid SECONDS\n");
    return 2;
  }
  // syscall(2) rather than getppid(3): no libc may ever cache the answer.
  double ns = bench::TimePerOp(bench::DurationNs(argv[1]),
                               [] { syscall(SYS_getppid); });
  bench::Report("ns_per_call", ns);
  return 0;
}
