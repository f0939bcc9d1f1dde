// Matchers for the result of a system call.
//
// A system call, raw or through libc, reports failure by returning -1 (or
// MAP_FAILED for mmap) and leaving the error in errno. These matchers check
// the return value, and errno when it failed, and explain a mismatch with the
// errno's name and strerror text:
//
//   EXPECT_THAT(write(fd, buf, n), SyscallSucceedsWithValue(n));
//   EXPECT_THAT(syscall(SYS_uname, nullptr), SyscallFailsWithErrno(EFAULT));
//
// errno is read when gtest applies the matcher, right after it evaluates the
// expression under test. Nothing gtest does in between sets errno: the
// allocations it makes go through an errno-preserving operator new
// (errno_preserving_new.cc, linked into every test).

#ifndef TEST_UTIL_SYSCALL_MATCHERS_H_
#define TEST_UTIL_SYSCALL_MATCHERS_H_

#include <sys/mman.h>

#include <cerrno>
#include <ostream>
#include <string>
#include <type_traits>

#include "gmock/gmock.h"

namespace pyvisor {
namespace testing {

// ErrnoName returns the symbolic name of errno value e ("EINVAL"), or its
// number as text if it has none.
std::string ErrnoName(int e);

// DescribeErrno returns "EINVAL (Invalid argument)" for errno value e.
std::string DescribeErrno(int e);

namespace internal {

// IsSyscallFailure reports whether a system call's return value v means
// failure: -1 for integers, MAP_FAILED for pointers.
template <typename T>
bool IsSyscallFailure(const T& v) {
  if constexpr (std::is_pointer_v<T>) {
    return reinterpret_cast<const void*>(v) == MAP_FAILED;
  } else {
    static_assert(std::is_integral_v<T>,
                  "syscall matchers apply to integers and pointers");
    return v == static_cast<T>(-1);
  }
}

// AnyValue stands for "no inner matcher" in the matchers below.
struct AnyValue {};

// DescribedAs is the type through which an inner value matcher V is described
// when no return type is at hand: V itself for pointers, T for a
// Matcher<T>, and long otherwise (integers and polymorphic matchers).
template <typename V>
struct DescribedAs {
  using type = std::conditional_t<std::is_pointer_v<V>, V, long>;
};
template <typename T>
struct DescribedAs<::testing::Matcher<T>> {
  using type = T;
};

// SyscallSuccessMatcher matches a successful return whose value matches an
// inner matcher (or any successful return, for AnyValue).
template <typename ValueMatcher>
class SyscallSuccessMatcher {
 public:
  explicit SyscallSuccessMatcher(ValueMatcher value)
      : value_(std::move(value)) {}

  template <typename T>
  bool MatchAndExplain(const T& rv, ::testing::MatchResultListener* l) const {
    const int e = errno;  // First, before anything can change it.
    if (IsSyscallFailure(rv)) {
      *l << "which failed with errno " << DescribeErrno(e);
      return false;
    }
    if constexpr (kAny) {
      return true;
    } else {
      return ::testing::ExplainMatchResult(value_, rv, l);
    }
  }

  void DescribeTo(std::ostream* os) const {
    *os << "succeeds";
    if constexpr (!kAny) {
      *os << " with a value that ";
      ::testing::SafeMatcherCast<Described>(value_).DescribeTo(os);
    }
  }

  void DescribeNegationTo(std::ostream* os) const {
    *os << "fails";
    if constexpr (!kAny) {
      *os << " or returns a value that ";
      ::testing::SafeMatcherCast<Described>(value_).DescribeNegationTo(os);
    }
  }

 private:
  static constexpr bool kAny = std::is_same_v<ValueMatcher, AnyValue>;
  using Described = typename DescribedAs<ValueMatcher>::type;
  ValueMatcher value_;
};

// SyscallFailureMatcher matches a failed return whose errno matches an inner
// matcher (or any failed return, for AnyValue).
template <typename ErrnoMatcher>
class SyscallFailureMatcher {
 public:
  explicit SyscallFailureMatcher(ErrnoMatcher errno_matcher)
      : errno_(std::move(errno_matcher)) {}

  template <typename T>
  bool MatchAndExplain(const T& rv, ::testing::MatchResultListener* l) const {
    const int e = errno;  // First, before anything can change it.
    if (!IsSyscallFailure(rv)) {
      *l << "which succeeded";
      return false;
    }
    if constexpr (kAny) {
      return true;
    } else {
      *l << "which failed with errno " << DescribeErrno(e);
      return ::testing::Matches(errno_)(e);
    }
  }

  void DescribeTo(std::ostream* os) const {
    *os << "fails";
    if constexpr (!kAny) {
      *os << " with an errno that ";
      ::testing::SafeMatcherCast<int>(errno_).DescribeTo(os);
    }
  }

  void DescribeNegationTo(std::ostream* os) const {
    *os << "succeeds";
    if constexpr (!kAny) {
      *os << " or fails with an errno that ";
      ::testing::SafeMatcherCast<int>(errno_).DescribeNegationTo(os);
    }
  }

 private:
  static constexpr bool kAny = std::is_same_v<ErrnoMatcher, AnyValue>;
  ErrnoMatcher errno_;
};

// ErrnoIs matches an errno value equal to e and names it in descriptions.
class ErrnoIsMatcher {
 public:
  explicit ErrnoIsMatcher(int e) : e_(e) {}
  bool MatchAndExplain(int e, ::testing::MatchResultListener*) const {
    return e == e_;
  }
  void DescribeTo(std::ostream* os) const { *os << "is " << DescribeErrno(e_); }
  void DescribeNegationTo(std::ostream* os) const {
    *os << "isn't " << DescribeErrno(e_);
  }

 private:
  int e_;
};

}  // namespace internal

// SyscallSucceeds matches a system call's return value that is not the
// failure value (-1, or MAP_FAILED for pointers).
inline auto SyscallSucceeds() {
  return ::testing::MakePolymorphicMatcher(
      internal::SyscallSuccessMatcher<internal::AnyValue>({}));
}

// SyscallSucceedsWithValue matches a successful return value that equals v,
// or matches v if v is a matcher (SyscallSucceedsWithValue(Gt(0))).
template <typename V>
auto SyscallSucceedsWithValue(V v) {
  return ::testing::MakePolymorphicMatcher(
      internal::SyscallSuccessMatcher<V>(std::move(v)));
}

// SyscallFails matches a failed system call, whatever its errno.
inline auto SyscallFails() {
  return ::testing::MakePolymorphicMatcher(
      internal::SyscallFailureMatcher<internal::AnyValue>({}));
}

// SyscallFailsWithErrno matches a failed system call whose errno is e, or
// matches e if e is a matcher (SyscallFailsWithErrno(AnyOf(EINTR, EAGAIN))).
template <typename E>
auto SyscallFailsWithErrno(E e) {
  if constexpr (std::is_integral_v<E>) {
    return ::testing::MakePolymorphicMatcher(
        internal::SyscallFailureMatcher<
            ::testing::PolymorphicMatcher<internal::ErrnoIsMatcher>>(
            ::testing::MakePolymorphicMatcher(internal::ErrnoIsMatcher(e))));
  } else {
    return ::testing::MakePolymorphicMatcher(
        internal::SyscallFailureMatcher<E>(std::move(e)));
  }
}

}  // namespace testing
}  // namespace pyvisor

#endif  // TEST_UTIL_SYSCALL_MATCHERS_H_
