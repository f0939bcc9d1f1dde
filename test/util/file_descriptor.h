// FileDescriptor: an owned file descriptor, closed when it goes away.

#ifndef TEST_UTIL_FILE_DESCRIPTOR_H_
#define TEST_UTIL_FILE_DESCRIPTOR_H_

#include <unistd.h>

#include <utility>

namespace pyvisor {
namespace testing {

// FileDescriptor owns a descriptor and closes it on destruction. It is
// movable, not copyable. A default-constructed one owns nothing (-1).
class FileDescriptor {
 public:
  FileDescriptor() = default;

  // Takes ownership of fd (which may be -1, owning nothing).
  explicit FileDescriptor(int fd) : fd_(fd) {}

  FileDescriptor(FileDescriptor&& other) noexcept : fd_(other.release()) {}
  FileDescriptor& operator=(FileDescriptor&& other) noexcept {
    reset(other.release());
    return *this;
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;

  ~FileDescriptor() { reset(); }

  // get returns the descriptor, still owned.
  int get() const { return fd_; }

  // valid reports whether a descriptor is owned.
  bool valid() const { return fd_ >= 0; }

  // release gives up ownership and returns the descriptor.
  int release() { return std::exchange(fd_, -1); }

  // reset closes the owned descriptor, if any, and takes fd instead.
  void reset(int fd = -1) {
    const int old = std::exchange(fd_, fd);
    if (old >= 0) close(old);
  }

 private:
  int fd_ = -1;
};

}  // namespace testing
}  // namespace pyvisor

#endif  // TEST_UTIL_FILE_DESCRIPTOR_H_
