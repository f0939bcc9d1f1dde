#include "test/util/test_util.h"

#include <string.h>

#include <cstdlib>
#include <string>

#include "test/util/syscall_matchers.h"

namespace pyvisor {
namespace testing {

std::string SandboxPlatform() {
  const char* p = getenv(kPlatformEnvVar);
  return p == nullptr ? "" : p;
}

bool IsRunningOnSandbox() { return !SandboxPlatform().empty(); }

bool IsRunningWithHostNetwork() {
  const char* n = getenv(kNetworkEnvVar);
  return IsRunningOnSandbox() && n != nullptr && strcmp(n, "host") == 0;
}

std::string ErrnoName(int e) {
  const char* name = strerrorname_np(e);
  return name != nullptr ? name : std::to_string(e);
}

std::string DescribeErrno(int e) {
  return ErrnoName(e) + " (" + strerror(e) + ")";
}

}  // namespace testing
}  // namespace pyvisor
