"""Which TensorFlow API a script-mode job is written for: 1 (TensorFlow 1.x) or 2.

A job that is TensorFlow 1.x code runs its script under the TF 1.x
namespace of :mod:`.tf1` in graph mode (:mod:`.tf1_script`); a TF 2 script
runs as it is. Decided in the supervisor, in this order:

1. ``SAGEMAKER_TF_API`` = ``1``, ``2`` or ``auto`` (unset: ``auto``), set by the
   image or the user; local mode and serve set it on the hosts from the
   TrainingImage's version tag (:func:`from_image`, :func:`host_env`)
   unless the request's Environment or the caller's environment gives it;
2. ``auto``: the syntax trees of the entry point and of the code dir's
   modules it imports (:func:`scan`) use a name only TensorFlow 1.x has
   (:mod:`.tf1_names`: ``tf.Session``, ``tf.placeholder``,
   ``tf.train.AdamOptimizer``, ``tf.logging``, ``tf.app``, ``tf.contrib``, ...)
   → 1; otherwise 2. ``tf.compat.v1.*`` is TF 2 code and stays TF 2.

Nothing here imports TensorFlow; nothing here runs the user's code.
"""

from __future__ import annotations

import os
import re

from ...core import settings

API_ENV = "SAGEMAKER_TF_API"
CHOICES = ("1", "2", "auto")
# auto reads at most this many files of the code dir, each at most this many bytes
MAX_SCANNED_FILES = 64
MAX_SCANNED_BYTES = 2 * 1024 * 1024

_TAG_VERSION = re.compile(r"^(\d+)\.(\d+)")


def from_image(image: str | None) -> str | None:
    """"1" or "2" from a TensorFlow image URI's version tag
    (``.../sagemaker-tensorflow-scriptmode:1.12.0-cpu-py3`` → "1",
    ``.../tensorflow-training:2.1.0-cpu-py3`` → "2"); None when the image is
    not a TensorFlow one or its tag names no version (``latest``, a digest)."""
    if not image:
        return None
    last = image.rsplit("/", 1)[-1].split("@", 1)[0]
    if ":" not in last:
        return None
    name, tag = last.split(":", 1)
    match = _TAG_VERSION.match(tag)
    if "tensorflow" not in name.lower() or match is None:
        return None
    major = match.group(1)
    return major if major in ("1", "2") else None


def host_env(image: str | None, *given) -> dict:
    """What local mode adds to every host's environment for ``image``:
    ``{SAGEMAKER_TF_API: "1"|"2"}`` from its tag, or nothing when one of the
    environments ``given`` (the request's Environment, the caller's) already
    sets the knob, or the tag names no version."""
    if any(settings.raw(API_ENV, environ) is not None for environ in given):
        return {}
    api = from_image(image)
    return {API_ENV: api} if api else {}


# --------------------------------------------------------------------------
# auto: the syntax tree


def _tensorflow_aliases(tree) -> set:
    """The names the module binds to the ``tensorflow`` package itself."""
    import ast  # noqa: PLC0415 - only a script-mode TensorFlow job under auto parses
    aliases = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "tensorflow":
                    aliases.add(alias.asname or "tensorflow")
                elif alias.name.startswith("tensorflow.") and alias.asname is None:
                    aliases.add("tensorflow")  # `import tensorflow.x` binds tensorflow
    return aliases


def _chain(node) -> list | None:
    """``a.b.c`` → ["a", "b", "c"]; None for anything else."""
    import ast  # noqa: PLC0415
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return parts[::-1]


def tf1_use(tree) -> tuple[int, str] | None:
    """(line, name) of the first use of a name only TensorFlow 1.x has, or None."""
    import ast  # noqa: PLC0415
    from .tf1_names import ONLY_TF1, ONLY_TF1_MODULES  # noqa: PLC0415

    aliases = _tensorflow_aliases(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            module = getattr(node, "module", None) or ""
            if isinstance(node, ast.ImportFrom) and node.level:
                continue
            paths = [module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            for path in paths:
                if any(path == m or path.startswith(m + ".") for m in ONLY_TF1_MODULES):
                    found.append((node.lineno, path))
            if isinstance(node, ast.ImportFrom) and module == "tensorflow":
                found.extend((node.lineno, f"tensorflow.{a.name}") for a in node.names if a.name in ONLY_TF1[""])
        elif isinstance(node, ast.Attribute):  # tf.x and tf.x.y of every chain tf.x.y.z
            chain = _chain(node)
            if not chain or chain[0] not in aliases or len(chain) < 2:
                continue
            module, name = chain[1], chain[2] if len(chain) > 2 else None
            if module in ONLY_TF1[""]:
                found.append((node.lineno, ".".join(chain[:2])))
            elif name is not None and module in ONLY_TF1 and name in ONLY_TF1[module]:
                found.append((node.lineno, ".".join(chain[:3])))
    return min(found) if found else None


def _local_imports(tree, code_dir: str, directory: str) -> list:
    """The files of the code dir that the module's imports name."""
    import ast  # noqa: PLC0415
    paths = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [(a.name, code_dir) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = directory if node.level else code_dir
            for _ in range(max(node.level - 1, 0)):
                base = os.path.dirname(base)
            module = node.module or ""
            names = [(f"{module}.{a.name}" if module else a.name, base) for a in node.names]
            if module:
                names.append((module, base))
        else:
            continue
        for dotted, base in names:
            stem = os.path.join(base, *dotted.split("."))
            for candidate in (stem + ".py", os.path.join(stem, "__init__.py")):
                if os.path.isfile(candidate):
                    paths.append(candidate)
    return paths


def scan(entry: str, code_dir: str) -> tuple[str, int, str] | None:
    """(file, line, name) of the first TF 1.x-only name in ``entry`` or in the
    code dir's modules it imports (transitively; at most
    :data:`MAX_SCANNED_FILES` files of :data:`MAX_SCANNED_BYTES`); None when
    there is none."""
    import ast  # noqa: PLC0415

    code_dir = os.path.realpath(code_dir)
    queue, seen = [os.path.realpath(entry)], set()
    while queue and len(seen) < MAX_SCANNED_FILES:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        try:
            if os.path.getsize(path) > MAX_SCANNED_BYTES:
                continue
            with open(path, "rb") as f:
                tree = ast.parse(f.read(), filename=path)
        except (OSError, SyntaxError, ValueError, RecursionError, MemoryError):  # the parser's limits too
            continue
        use = tf1_use(tree)
        if use is not None:
            return os.path.relpath(path, code_dir), use[0], use[1]
        queue.extend(p for p in map(os.path.realpath, _local_imports(tree, code_dir, os.path.dirname(path)))
                     if p.startswith(code_dir + os.sep) and p not in seen)
    return None


def choose(environ, entry: str | None, code_dir: str) -> tuple[str, str]:
    """("1" or "2", why): the knob, else ``auto`` on ``entry`` (a Python file, or None)."""
    knob = settings.choice(API_ENV, CHOICES, "auto", environ=environ)
    if knob != "auto":
        return knob, f"{API_ENV}={knob}"
    if entry is None:
        return "2", f"{API_ENV} is auto and the entry point is not a Python file"
    use = scan(entry, code_dir)
    if use is None:
        return "2", f"{API_ENV} is auto and {os.path.basename(entry)} uses no name only TensorFlow 1.x has"
    path, line, name = use
    return "1", f"{API_ENV} is auto and {path} line {line} uses {name}, which only TensorFlow 1.x has"
