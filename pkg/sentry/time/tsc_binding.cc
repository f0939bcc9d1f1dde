// _tsc: the CPU's time-stamp counter, read together with the host clocks,
// for calibrating the vDSO's clock (see vdso_clock.py).

#include <cpuid.h>
#include <pybind11/pybind11.h>
#include <time.h>
#include <x86intrin.h>

#include <cstdint>
#include <tuple>

namespace py = pybind11;

namespace {

int64_t Nanos(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// Sample returns (tsc, CLOCK_MONOTONIC ns, CLOCK_REALTIME ns) taken as close
// together as this thread can: of a few tries, the one whose two TSC reads
// around the monotonic read are closest, with the TSC at their midpoint.
std::tuple<uint64_t, int64_t, int64_t> Sample() {
  uint64_t best_gap = UINT64_MAX, best_tsc = 0;
  int64_t best_mono = 0, best_real = 0;
  for (int i = 0; i < 8; i++) {
    const uint64_t before = __rdtsc();
    const int64_t mono = Nanos(CLOCK_MONOTONIC);
    const uint64_t after = __rdtsc();
    const int64_t real = Nanos(CLOCK_REALTIME);
    if (after - before < best_gap) {
      best_gap = after - before;
      best_tsc = before + (after - before) / 2;
      best_mono = mono;
      best_real = real - (Nanos(CLOCK_MONOTONIC) - mono) / 2;
    }
  }
  return {best_tsc, best_mono, best_real};
}

// InvariantTsc reports whether the TSC runs at a constant rate in every
// power state (CPUID 0x80000007, EDX bit 8), which the vDSO's clock needs.
bool InvariantTsc() {
  unsigned int a, b, c, d;
  if (!__get_cpuid(0x80000007, &a, &b, &c, &d)) return false;
  return (d >> 8) & 1;
}

// HasRdtscp reports whether RDTSCP exists (CPUID 0x80000001, EDX bit 27);
// the vDSO's getcpu reads the host CPU from its TSC_AUX value.
bool HasRdtscp() {
  unsigned int a, b, c, d;
  if (!__get_cpuid(0x80000001, &a, &b, &c, &d)) return false;
  return (d >> 27) & 1;
}

}  // namespace

PYBIND11_MODULE(_tsc, m) {
  m.doc() = "The time-stamp counter and the host clocks, sampled together.";
  m.def("sample", &Sample,
        "Returns (tsc, CLOCK_MONOTONIC ns, CLOCK_REALTIME ns), taken together.");
  m.def("invariant_tsc", &InvariantTsc,
        "Reports whether the TSC rate is constant (CPUID 0x80000007 EDX[8]).");
  m.def("has_rdtscp", &HasRdtscp, "Reports whether RDTSCP exists.");
}
