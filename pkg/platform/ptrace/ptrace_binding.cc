// The _ptrace Python module: a thin binding of the ptrace platform core.
//
// Every call that can block or makes ptrace requests runs with the GIL
// released, after every Python object it needs has been turned into a C++
// value or a pinned buffer pointer. PtraceError becomes OSError(errno,
// "operation: strerror").

#include <pybind11/pybind11.h>
#include <stddef.h>
#include <stdint.h>

#include <exception>
#include <memory>

#include "pkg/platform/ptrace/address_space.h"
#include "pkg/platform/ptrace/context.h"
#include "pkg/platform/ptrace/error.h"
#include "pkg/platform/ptrace/platform.h"

namespace py = pybind11;

namespace pyvisor::ptrace_platform {
namespace {

// WritableBuffer pins a writable, contiguous buffer of a Python object.
// Construct and destroy it with the GIL held; in between, its memory may be
// used without the GIL.
class WritableBuffer {
 public:
  explicit WritableBuffer(py::handle obj) {
    if (PyObject_GetBuffer(obj.ptr(), &view_, PyBUF_WRITABLE) != 0) {
      throw py::error_already_set();
    }
  }
  ~WritableBuffer() { PyBuffer_Release(&view_); }
  WritableBuffer(const WritableBuffer&) = delete;
  WritableBuffer& operator=(const WritableBuffer&) = delete;

  uint8_t* data() const { return static_cast<uint8_t*>(view_.buf); }
  size_t size() const { return static_cast<size_t>(view_.len); }

 private:
  Py_buffer view_;
};

std::shared_ptr<Platform> NewPlatform(int memfile_fd, bool pin_stub_threads,
                                      int spare_address_spaces) {
  PlatformOptions options;
  options.pin_stub_threads = pin_stub_threads;
  options.spare_address_spaces = spare_address_spaces;
  py::gil_scoped_release release;
  return Platform::Create(memfile_fd, options);
}

int Switch(Context& context, AddressSpace& as, py::handle buffer, int flags) {
  WritableBuffer state(buffer);
  py::gil_scoped_release release;
  return context.Switch(as, state.data(), state.size(), flags);
}

void PullFpstate(Context& context, py::handle buffer) {
  WritableBuffer state(buffer);
  py::gil_scoped_release release;
  context.PullFpstate(state.data(), state.size());
}

}  // namespace
}  // namespace pyvisor::ptrace_platform

namespace pp = pyvisor::ptrace_platform;

PYBIND11_MODULE(_ptrace, m) {
  m.doc() = "The ptrace platform core (see pkg/platform/ptrace/platform.h).";

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const pp::PtraceError& e) {
      py::tuple args = py::make_tuple(e.err(), e.what());
      PyErr_SetObject(PyExc_OSError, args.ptr());
    }
  });

  m.attr("EVENT_SYSCALL") = pp::kEventSyscall;
  m.attr("EVENT_FAULT") = pp::kEventFault;
  m.attr("EVENT_SIGNAL") = pp::kEventSignal;
  m.attr("EVENT_INTERRUPT") = pp::kEventInterrupt;
  m.attr("EVENT_DIED") = pp::kEventDied;
  m.attr("SWITCH_SET_FPSTATE") = pp::kSwitchSetFpstate;
  m.attr("FPSTATE_OFFSET") = pp::kFpstateOffset;

  py::class_<pp::Platform, std::shared_ptr<pp::Platform>>(m, "Platform")
      .def(py::init(&pp::NewPlatform), py::arg("memfile_fd"), py::kw_only(),
           py::arg("pin_stub_threads") = true,
           py::arg("spare_address_spaces") = 1)
      .def_property_readonly("min_user_address",
                             &pp::Platform::min_user_address)
      .def_property_readonly("max_user_address",
                             &pp::Platform::max_user_address)
      .def_property_readonly("fpstate_size", &pp::Platform::fpstate_size)
      .def_property_readonly("master_pid", &pp::Platform::master_pid)
      .def("new_address_space", &pp::Platform::NewAddressSpace,
           py::call_guard<py::gil_scoped_release>())
      .def("new_context", &pp::Platform::NewContext,
           py::call_guard<py::gil_scoped_release>())
      .def("close", &pp::Platform::Close,
           py::call_guard<py::gil_scoped_release>());

  py::class_<pp::AddressSpace, std::shared_ptr<pp::AddressSpace>>(
      m, "AddressSpace")
      .def("map_file", &pp::AddressSpace::MapFile, py::arg("addr"),
           py::arg("length"), py::arg("offset"), py::arg("prot"),
           py::arg("precommit") = false,
           py::call_guard<py::gil_scoped_release>())
      .def("unmap", &pp::AddressSpace::Unmap, py::arg("addr"),
           py::arg("length"), py::call_guard<py::gil_scoped_release>())
      .def("protect", &pp::AddressSpace::Protect, py::arg("addr"),
           py::arg("length"), py::arg("prot"),
           py::call_guard<py::gil_scoped_release>())
      .def("release", &pp::AddressSpace::Release,
           py::call_guard<py::gil_scoped_release>())
      .def_property_readonly("pid", &pp::AddressSpace::pid)
      .def_property_readonly("control_tid", &pp::AddressSpace::control_tid)
      .def_property_readonly("released", &pp::AddressSpace::released);

  py::class_<pp::Context, std::shared_ptr<pp::Context>>(m, "Context")
      .def("switch", &pp::Switch, py::arg("address_space"), py::arg("buffer"),
           py::arg("flags") = 0)
      .def("interrupt", &pp::Context::Interrupt)
      .def("pull_fpstate", &pp::PullFpstate, py::arg("buffer"))
      .def("prepare", &pp::Context::Prepare, py::arg("address_space"),
           py::call_guard<py::gil_scoped_release>())
      .def("release", &pp::Context::Release,
           py::call_guard<py::gil_scoped_release>())
      .def_property_readonly("stub_tid", [](pp::Context& context) {
        py::gil_scoped_release release;
        return context.stub_tid();
      });
}
