// spawn SECONDS PROGRAM [ARGS...]: fork, execv PROGRAM, wait for it, in a
// loop; reports microseconds per round and fails if PROGRAM does.

#include <sys/wait.h>
#include <unistd.h>

#include "test/benchmarks/workloads/bench_util.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: spawn SECONDS PROGRAM [ARGS...]\n");
    return 2;
  }
  char** child_argv = argv + 2;
  double ns = bench::TimePerOp(bench::DurationNs(argv[1]), [child_argv] {
    pid_t pid = fork();
    if (pid < 0) bench::Die("fork");
    if (pid == 0) {
      execv(child_argv[0], child_argv);
      _exit(127);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid) bench::Die("waitpid");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "%s: wait status %#x\n", child_argv[0], status);
      exit(1);
    }
  });
  bench::Report("us_per_spawn", ns / 1000);
  return 0;
}
