// mmap_touch SECONDS: map 1 MiB of anonymous memory, write one byte to each
// of its pages, unmap it; reports nanoseconds per page (the mapping's share
// plus one first-touch page fault).

#include <sys/mman.h>

#include "test/benchmarks/workloads/bench_util.h"

namespace {
constexpr size_t kRegion = 1 << 20;
constexpr size_t kPage = 4096;
}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: mmap_touch SECONDS\n");
    return 2;
  }
  double ns = bench::TimePerOp(bench::DurationNs(argv[1]), [] {
    void* addr = mmap(nullptr, kRegion, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (addr == MAP_FAILED) bench::Die("mmap");
    volatile char* p = static_cast<volatile char*>(addr);
    for (size_t off = 0; off < kRegion; off += kPage) p[off] = 1;
    if (munmap(addr, kRegion) != 0) bench::Die("munmap");
  });
  bench::Report("ns_per_page", ns / (kRegion / kPage));
  return 0;
}
