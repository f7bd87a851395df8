"""The package's layers, checked from the source: no module imports from a layer above its own.

The order is README's layout table: the platform's names, the error kinds, the basics, the job
on disk, supervision, archives, storage, one host's needs, the framework runners, MPI, ``train``,
local mode, serve, the command line. Imports inside functions count as much as the ones at the top.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "sagemaker_training"

LAYERS = (
    ("params",),
    ("errors",),
    ("core",),
    ("environment",),
    ("supervision",),
    ("archives",),
    ("storage",),
    ("host",),
    ("frameworks",),
    ("mpi",),
    ("train",),
    ("local",),
    ("serve",),
    ("cli", "__main__"),
)


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    relative = pathlib.Path(*name.split(".")[1:]) if "." in name else pathlib.Path()
    base = PACKAGE / relative
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def layer_of(module: str) -> int | None:
    """The layer of ``sagemaker_training.X...`` (None for the package itself)."""
    parts = module.split(".")
    if parts[0] != PACKAGE.name or len(parts) == 1:
        return None
    for index, names in enumerate(LAYERS):
        if parts[1] in names:
            return index
    raise AssertionError(f"{module} is in no layer: add its room to LAYERS (and README's layout table)")


def imported_modules(source: str, name: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, module) of every sagemaker_training module that the module ``name`` imports."""
    package = name if is_package else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.split(".")[0] == PACKAGE.name]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] != PACKAGE.name:
                continue
            for alias in node.names:  # `from . import storage` imports the module, not a name
                candidate = f"{base}.{alias.name}"
                found.append((node.lineno, candidate if _is_module(candidate) else base))
    return found


def upward_imports(source: str, name: str, is_package: bool = False) -> list[str]:
    own = layer_of(name)
    if own is None:
        return []
    return [f"line {line}: {module} ({LAYERS[layer_of(module)][0]})"
            for line, module in imported_modules(source, name, is_package)
            if layer_of(module) is not None and layer_of(module) > own]


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer():
    for path in SOURCES:
        layer_of(_module_name(path))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_import_goes_up_the_layers(path):
    name = _module_name(path)
    upward = upward_imports(path.read_text(), name, path.name == "__init__.py")
    assert not upward, f"{path.relative_to(PACKAGE)} ({LAYERS[layer_of(name)][0]}) imports from a layer above: {upward}"


@pytest.mark.parametrize("source", [
    "from ..local.request import RequestError\n",
    "def f():\n    from ..local import request\n",
    "import sagemaker_training.serve.store\n",
    "from sagemaker_training import train\n",
])
def test_the_checker_sees_an_upward_import(source):
    """The rule can fail: a storage module importing from above, at the top or in a function."""
    assert upward_imports(source, "sagemaker_training.storage.probe")
    assert not upward_imports("from . import transfer\nfrom ..core import settings\n", "sagemaker_training.storage.probe")


def test_the_contrib_modules_import_nothing_of_the_tf1_namespace():
    """tf1.py builds ``tf.contrib`` from contrib*.py and hands them its node classes: no import runs back
    (the ``contrib`` <-> ``tf1`` cycle that lazy imports used to hold apart)."""
    folder = PACKAGE / "frameworks" / "tensorflow"
    for path in sorted(folder.glob("contrib*.py")):
        name = _module_name(path)
        back = [module for _, module in imported_modules(path.read_text(), name)
                if module == "sagemaker_training.frameworks.tensorflow.tf1"]
        assert not back, f"{path.name} imports tf1"
