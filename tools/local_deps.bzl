"""A repository rule that exposes host headers and libraries to the build.

Nothing here is downloaded: the Python interpreter on PATH reports its own
include directory and pybind11's (and its own path and site-packages, for
launchers that start it directly), and Debian's googletest is linked from the
system library directory.
"""

_PROBE = """
import sys
import sysconfig
import pybind11
print(sysconfig.get_paths()["include"])
print(pybind11.get_include())
print(sys.executable)
print(sysconfig.get_paths()["purelib"])
"""

_BUILD = """
package(default_visibility = ["//visibility:public"])

cc_library(
    name = "python_headers",
    hdrs = glob(["python/**/*.h"]),
    includes = ["python"],
)

cc_library(
    name = "pybind11",
    hdrs = glob(["pybind11/**/*.h"]),
    includes = ["pybind11"],
    deps = [":python_headers"],
)

# The interpreter the extension modules are built for, and its
# site-packages directory, one path per file (for launchers, see
# //runsc:runsc).
exports_files(["python3_path", "python3_purelib"])

cc_library(
    name = "gtest",
    linkopts = ["-lgtest", "-lgmock", "-pthread"],
)

cc_library(
    name = "gtest_main",
    linkopts = ["-lgtest_main", "-lgtest", "-lgmock", "-pthread"],
)
"""

def _local_deps_impl(ctx):
    python = ctx.which("python3")
    if not python:
        fail("python3 is not on PATH; run tools/setup.sh first")
    result = ctx.execute([python, "-c", _PROBE])
    if result.return_code != 0:
        fail("cannot locate Python or pybind11 headers (run tools/setup.sh): " +
             result.stderr)
    lines = result.stdout.strip().split("\n")
    python_include, pybind11_include, executable, purelib = lines
    ctx.symlink(python_include, "python")
    ctx.symlink(pybind11_include, "pybind11")
    ctx.file("python3_path", executable + "\n")
    ctx.file("python3_purelib", purelib + "\n")
    ctx.file("BUILD.bazel", _BUILD)
    ctx.file("WORKSPACE", "workspace(name = \"%s\")\n" % ctx.name)

local_deps = repository_rule(
    implementation = _local_deps_impl,
    environ = ["PATH"],
    local = True,
)
