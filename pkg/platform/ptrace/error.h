// The one exception type of the ptrace platform core.

#ifndef PKG_PLATFORM_PTRACE_ERROR_H_
#define PKG_PLATFORM_PTRACE_ERROR_H_

#include <stdexcept>
#include <string>

namespace pyvisor::ptrace_platform {

// PtraceError is a failed host operation: an errno value and the name of the
// operation that failed. The Python binding turns it into OSError(err, what).
class PtraceError : public std::runtime_error {
 public:
  PtraceError(int err, const std::string& op);

  // err returns the errno value.
  int err() const { return err_; }
  // op returns the name of the failed operation.
  const std::string& op() const { return op_; }

 private:
  int err_;
  std::string op_;
};

// ThrowErrno throws a PtraceError for op with the current errno.
[[noreturn]] void ThrowErrno(const std::string& op);

// ThrowError throws a PtraceError for op with the given errno value.
[[noreturn]] void ThrowError(int err, const std::string& op);

}  // namespace pyvisor::ptrace_platform

#endif  // PKG_PLATFORM_PTRACE_ERROR_H_
