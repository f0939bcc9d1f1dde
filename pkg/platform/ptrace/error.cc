#include "pkg/platform/ptrace/error.h"

#include <errno.h>
#include <string.h>

#include <string>

namespace pyvisor::ptrace_platform {

PtraceError::PtraceError(int err, const std::string& op)
    : std::runtime_error(op + ": " + strerror(err)), err_(err), op_(op) {}

void ThrowErrno(const std::string& op) { throw PtraceError(errno, op); }

void ThrowError(int err, const std::string& op) { throw PtraceError(err, op); }

}  // namespace pyvisor::ptrace_platform
