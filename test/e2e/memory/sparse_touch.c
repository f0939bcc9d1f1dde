// Maps 1 GiB of private anonymous memory, writes one byte in every MiB of
// it, says "ready", and waits for its standard input to close.

#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

int main(void) {
  const size_t len = 1UL << 30;
  char* p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  for (size_t i = 0; i < len; i += 1 << 20) p[i] = 1;
  printf("ready\n");
  fflush(stdout);
  char c;
  while (read(0, &c, 1) > 0) {
  }
  return 0;
}
