// idle: prints "ready" and then waits until its standard input is closed,
// so that the harness can measure the memory of an idle sandbox.

#include <unistd.h>

#include "test/benchmarks/workloads/bench_util.h"

int main() {
  if (write(1, "ready\n", 6) != 6) bench::Die("write");
  char buf[64];
  while (read(0, buf, sizeof(buf)) > 0) {
  }
  return 0;
}
