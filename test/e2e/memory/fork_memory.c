// Writes every page of 256 MiB of private memory, forks, writes one page on
// each side, says "ready", and waits for its standard input to close. Says
// "nofork" and exits if fork(2) is not available.

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
  const size_t len = 256UL << 20;
  char* p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  for (size_t i = 0; i < len; i += 4096) p[i] = 1;
  pid_t pid = fork();
  if (pid < 0) {
    printf(errno == ENOSYS ? "nofork\n" : "fork failed\n");
    return errno == ENOSYS ? 0 : 1;
  }
  if (pid == 0) {
    p[0] = 2;
    for (;;) pause();
  }
  p[4096] = 3;
  printf("ready\n");
  fflush(stdout);
  char c;
  while (read(0, &c, 1) > 0) {
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  return p[0] == 1 ? 0 : 2;
}
