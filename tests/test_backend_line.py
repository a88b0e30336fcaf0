"""zoo/layers, zoo/models and zoo/samplers use keras and keras.ops only (DESIGN.md)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "zoo"
BACKEND_AGNOSTIC = ["layers", "models", "samplers"]


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", BACKEND_AGNOSTIC)
def test_package_imports_no_backend_framework(package):
    files = sorted((ROOT / package).glob("*.py"))
    assert files, f"no modules found in zoo/{package}"
    for path in files:
        forbidden = _imports(path) & {"tensorflow", "tensorflow_text", "torch", "jax"}
        assert not forbidden, f"{path.relative_to(ROOT.parent)} imports {sorted(forbidden)}"


def test_zoo_imports_do_not_reach_into_tasks_from_layers():
    for package in BACKEND_AGNOSTIC:
        for path in (ROOT / package).glob("*.py"):
            assert not any(
                name.startswith(("zoo.tasks", "zoo.data", "zoo.text", "zoo.export"))
                for name in _module_imports(path)
            ), path


def _module_imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
    return out
