// Replacements of the global operator new and delete that leave errno as
// they found it.
//
// The syscall matchers read errno after gtest has evaluated the expression
// under test, and gtest allocates in between (it builds a Matcher from the
// matcher expression). malloc only sets errno when it fails, but a test
// should not depend on that; saving errno around every allocation makes the
// matchers' reading of errno exact.

#include <cerrno>
#include <cstdlib>
#include <new>

namespace {

void* Allocate(std::size_t n) {
  const int saved = errno;
  void* p = std::malloc(n == 0 ? 1 : n);
  errno = saved;
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

void Free(void* p) {
  const int saved = errno;
  std::free(p);
  errno = saved;
}

}  // namespace

void* operator new(std::size_t n) { return Allocate(n); }
void* operator new[](std::size_t n) { return Allocate(n); }
void operator delete(void* p) noexcept { Free(p); }
void operator delete[](void* p) noexcept { Free(p); }
void operator delete(void* p, std::size_t) noexcept { Free(p); }
void operator delete[](void* p, std::size_t) noexcept { Free(p); }
