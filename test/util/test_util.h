// Test support shared by the system-call tests.
//
// Include this one header: it brings in googletest, gmock, the syscall
// matchers and FileDescriptor, and declares what a test needs to know about
// where it runs.

#ifndef TEST_UTIL_TEST_UTIL_H_
#define TEST_UTIL_TEST_UTIL_H_

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/util/file_descriptor.h"
#include "test/util/syscall_matchers.h"

namespace pyvisor {
namespace testing {

// kPlatformEnvVar names the environment variable that the test runner sets
// to the sandbox's platform ("ptrace") when it runs a test under runsc. It is
// unset when the test runs natively.
inline constexpr char kPlatformEnvVar[] = "RUNSC_TEST_PLATFORM";

// IsRunningOnSandbox reports whether the test runs inside the sandbox.
bool IsRunningOnSandbox();

// SandboxPlatform returns the sandbox's platform ("ptrace"), or "" when the
// test runs natively.
std::string SandboxPlatform();

// kNetworkEnvVar names the environment variable that the test runner sets to
// the sandbox's --network when a test variant asks for one.
inline constexpr char kNetworkEnvVar[] = "RUNSC_TEST_NETWORK";

// IsRunningWithHostNetwork reports whether the test runs in a sandbox with
// --network=host (hostinet: AF_INET sockets are host sockets).
bool IsRunningWithHostNetwork();

}  // namespace testing
}  // namespace pyvisor

// SKIP_IF skips the current test, naming the condition, if cond is true. Use
// it at the top of a test body with a comment that says what is missing:
//
//   // Needs clone(2): the sandbox has no threads yet.
//   SKIP_IF(IsRunningOnSandbox());
//
// Like GTEST_SKIP, it returns from the enclosing function, so call it in the
// test body (or in SetUp), not in a helper.
#define SKIP_IF(cond)                                    \
  do {                                                   \
    if (cond) {                                          \
      GTEST_SKIP() << "skipped because " #cond " holds"; \
    }                                                    \
  } while (0)

#endif  // TEST_UTIL_TEST_UTIL_H_
