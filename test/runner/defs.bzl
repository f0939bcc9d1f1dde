"""The syscall_test macro: one googletest binary, run natively and in runsc.

BUILD files load syscall_test from //tools:defs.bzl, which re-exports it.
This file loads nothing from //tools:defs.bzl (that would be a cycle).
"""

load("@rules_cc//cc:defs.bzl", "cc_binary")

# The runsc platforms every syscall test runs on, besides natively.
SYSCALL_TEST_PLATFORMS = ["ptrace"]

_RUNNER = "//test/runner:runner.py"
_RUNSC = "//runsc"

def _runner_test(name, binary, args, data, size, shard_count, tags):
    kwargs = {}
    if shard_count != None:
        kwargs["shard_count"] = shard_count
    native.py_test(
        name = name,
        srcs = [_RUNNER],
        main = _RUNNER,
        args = args + ["$(rootpath %s)" % binary],
        data = [binary] + data,
        python_version = "PY3",
        size = size,
        tags = tags,
        **kwargs
    )

def syscall_test(
        name,
        srcs,
        deps = [],
        data = [],
        size = "medium",
        shard_count = None,
        tags = [],
        runsc_skip = False,
        on_root = False,
        host_network = False):
    """A system-call test program and its native and runsc test targets.

    Defines:
      <name>: the statically linked googletest binary (testonly).
      <name>_native: runs <name> directly on the host.
      <name>_runsc_<platform>: runs the same binary inside one sandbox,
        `runsc --platform=<platform> do <name>`, for each platform in
        SYSCALL_TEST_PLATFORMS; tagged "runsc" and "<platform>".
      <name>_runsc_<platform>_on_root (with on_root): the same, with the
        test's files on the container's root (the gofer-served overlay)
        instead of the sentry's /tmp; tagged "runsc", "<platform>" and
        "on_root".

    Args:
      name: the binary's name; the tests are named after it.
      srcs: the test's C++ sources.
      deps: extra cc_library dependencies; //test/util:test_util and
        //test/util:test_main are always added.
      data: files the program needs at run time (helper programs), found
        beside it in its runfiles.
      size: Bazel test size of every variant.
      shard_count: Bazel shard count of every variant (googletest sharding).
      tags: tags of every variant.
      runsc_skip: the program cannot run in the sandbox at all yet: its runsc
        variants are tagged "manual" (still buildable and runnable by name).
        Prefer SKIP_IF in the individual test cases.
      on_root: also run in the sandbox with the files the test makes
        (TempDirRoot) on the container's root filesystem, for file system
        tests.
      host_network: also run in a sandbox with `--network=host` (hostinet),
        as <name>_runsc_<platform>_hostnet, tagged "hostnet"; the program
        can tell with IsRunningWithHostNetwork(). For socket tests.
    """
    cc_binary(
        name = name,
        testonly = 1,
        srcs = srcs,
        linkopts = ["-static"],
        linkstatic = 1,
        data = data,
        tags = tags,
        deps = deps + [
            "//test/util:test_main",
            "//test/util:test_util",
        ],
    )
    binary = ":" + name

    _runner_test(
        name = name + "_native",
        binary = binary,
        args = ["--platform=native"],
        data = [],
        size = size,
        shard_count = shard_count,
        tags = tags + ["native"],
    )

    for platform in SYSCALL_TEST_PLATFORMS:
        _runner_test(
            name = "%s_runsc_%s" % (name, platform),
            binary = binary,
            args = [
                "--platform=" + platform,
                "--runsc=$(rootpath %s)" % _RUNSC,
            ],
            data = [_RUNSC],
            size = size,
            shard_count = shard_count,
            tags = tags + ["runsc", platform] +
                   (["manual"] if runsc_skip else []),
        )
        if host_network:
            _runner_test(
                name = "%s_runsc_%s_hostnet" % (name, platform),
                binary = binary,
                args = [
                    "--platform=" + platform,
                    "--runsc=$(rootpath %s)" % _RUNSC,
                    "--network=host",
                ],
                data = [_RUNSC],
                size = size,
                shard_count = shard_count,
                tags = tags + ["runsc", platform, "hostnet"] +
                       (["manual"] if runsc_skip else []),
            )
        if on_root:
            _runner_test(
                name = "%s_runsc_%s_on_root" % (name, platform),
                binary = binary,
                args = [
                    "--platform=" + platform,
                    "--runsc=$(rootpath %s)" % _RUNSC,
                    "--fs-root=tmpdir",
                ],
                data = [_RUNSC],
                size = size,
                shard_count = shard_count,
                tags = tags + ["runsc", platform, "on_root"] +
                       (["manual"] if runsc_skip else []),
            )
