// pipe_pingpong SECONDS: a byte goes back and forth between two processes
// over two pipes; reports nanoseconds per round trip (two writes, two reads,
// two wake-ups).

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test/benchmarks/workloads/bench_util.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: pipe_pingpong SECONDS\n");
    return 2;
  }
  int ping[2];
  int pong[2];
  if (pipe(ping) != 0 || pipe(pong) != 0) bench::Die("pipe");
  pid_t pid = fork();
  if (pid < 0) bench::Die("fork");
  if (pid == 0) {
    // The echo: until the parent closes its end.
    close(ping[1]);
    close(pong[0]);
    char c;
    while (read(ping[0], &c, 1) == 1) {
      if (write(pong[1], &c, 1) != 1) _exit(1);
    }
    _exit(0);
  }
  close(ping[0]);
  close(pong[1]);
  double ns = bench::TimePerOp(bench::DurationNs(argv[1]), [&] {
    char c = 'x';
    if (write(ping[1], &c, 1) != 1) bench::Die("write");
    if (read(pong[0], &c, 1) != 1) bench::Die("read");
  });
  close(ping[1]);
  int status;
  if (waitpid(pid, &status, 0) != pid) bench::Die("waitpid");
  bench::Report("ns_per_roundtrip", ns);
  return 0;
}
