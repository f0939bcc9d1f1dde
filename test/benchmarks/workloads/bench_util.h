// Helpers shared by the benchmark workloads (see test/benchmarks/harness.py).
//
// A workload measures itself and prints one `key value` line per figure on
// stdout; the harness parses those lines. Timed loops run for a wall-clock
// budget rather than a fixed count, so that a fast runtime gets enough
// iterations for a stable figure and a slow one still ends in time.

#ifndef TEST_BENCHMARKS_WORKLOADS_BENCH_UTIL_H_
#define TEST_BENCHMARKS_WORKLOADS_BENCH_UTIL_H_

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

namespace bench {

// NowNs is CLOCK_MONOTONIC in nanoseconds.
inline int64_t NowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// Die prints what failed, with errno, and exits 1: the harness reports the
// workload as unsupported on the runtime that made it fail.
[[noreturn]] inline void Die(const char* what) {
  fprintf(stderr, "%s: %s\n", what, strerror(errno));
  exit(1);
}

// DurationNs parses a duration in seconds (argv) into nanoseconds.
inline int64_t DurationNs(const char* arg) {
  double seconds = atof(arg);
  if (seconds <= 0) seconds = 0.001;
  return static_cast<int64_t>(seconds * 1e9);
}

// TimePerOp runs op once to warm up, then in doubling batches until at least
// budget_ns have passed, and returns the mean nanoseconds per call of op.
template <typename Op>
double TimePerOp(int64_t budget_ns, Op op) {
  op();
  int64_t done = 0;
  int64_t batch = 1;
  int64_t start = NowNs();
  int64_t elapsed = 0;
  while (elapsed < budget_ns) {
    for (int64_t i = 0; i < batch; ++i) op();
    done += batch;
    if (batch < (1 << 16)) batch *= 2;
    elapsed = NowNs() - start;
  }
  return static_cast<double>(elapsed) / static_cast<double>(done);
}

// Report prints one figure for the harness.
inline void Report(const char* key, double value) {
  printf("%s %.3f\n", key, value);
  fflush(stdout);
}

}  // namespace bench

#endif  // TEST_BENCHMARKS_WORKLOADS_BENCH_UTIL_H_
