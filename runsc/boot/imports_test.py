"""The sandbox process imports every module before it confines itself.

After pivot_root the sandbox process cannot read runsc's own files, and
after its seccomp filter it cannot open them: an `import` that runs then,
in the sentry or in what the sandbox process runs, fails unless the module
is loaded already. So an import inside a function of that code must name a
module that the sandbox process has loaded by the time it confines itself
(that is, one that importing runsc/boot/boot.py loads); imports for type
checking only are fine. This test reads the source tree, found through the
pyproject.toml symlink in the runfiles, as //:ruff_check_test does.
"""

from __future__ import annotations

import ast
import os
import pathlib
import sys

# Code that runs in the sandbox process after it is confined.
CONFINED = ("pkg/sentry", "pkg/platform", "pkg/unet", "pkg/abi", "runsc/boot")


def _workspace() -> pathlib.Path:
    workspace = os.environ.get("TEST_WORKSPACE", "pyvisor")
    link = os.path.join(os.environ.get("TEST_SRCDIR", ""), workspace, "pyproject.toml")
    if os.path.exists(link):
        return pathlib.Path(os.path.realpath(link)).parent
    return pathlib.Path(__file__).resolve().parents[2]


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for sub in ast.walk(node):
                if hasattr(sub, "lineno"):
                    lines.add(sub.lineno)
    return lines


def _lazy_imports(root: pathlib.Path) -> list[tuple[str, str]]:
    """Returns (where, module) for each import inside a function."""
    found = []
    for d in CONFINED:
        for path in sorted((root / d).rglob("*.py")):
            if path.name.endswith("_test.py") or "bazel-" in str(path):
                continue
            tree = ast.parse(path.read_text(), str(path))
            skip = _type_checking_lines(tree)
            for fn in ast.walk(tree):
                if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                for sub in ast.walk(fn):
                    line = getattr(sub, "lineno", None)
                    if line is None or line in skip:
                        continue
                    where = f"{path.relative_to(root)}:{line}"
                    if isinstance(sub, ast.Import):
                        found += [(where, a.name) for a in sub.names]
                    elif isinstance(sub, ast.ImportFrom) and sub.module:
                        found.append((where, sub.module))
    return found


def test_lazy_imports_name_modules_loaded_at_start_up() -> None:
    import runsc.boot.boot  # noqa: F401, PLC0415 (what the sandbox loads)

    missing = [
        f"{where} imports {module}"
        for where, module in _lazy_imports(_workspace())
        if module not in sys.modules
    ]
    assert missing == [], f"modules a confined sandbox could not import: {missing}"
