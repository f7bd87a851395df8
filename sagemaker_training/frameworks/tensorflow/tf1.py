"""TensorFlow 1.x code on TensorFlow 2.15: the namespace legacy modules import.

The legacy container ran TensorFlow 1.4-1.12; the modules written for it
(``estimator_fn`` / ``model_fn`` / ``keras_model_fn``) call ``tf.placeholder``,
``tf.layers.dense``, ``tf.contrib.learn...`` and import TF 1's internal
paths. TensorFlow 1.x needs Python <= 3.7, so those modules run on
TensorFlow 2.15 through :class:`Namespace`:

* a name resolves from ``tf.compat.v1`` first, then from TensorFlow 2
  (sub-modules the same way: ``tf.train`` is ``tf.compat.v1.train``, then
  ``tf.train``); ``tf.contrib`` offers the pieces the SageMaker legacy
  examples used (:mod:`.contrib`);
* TF 1's canned estimators (``tf.estimator.DNNClassifier`` ...) are TF 1's
  classes, so defaults (Adagrad at 0.05, losses summed over the batch) are
  those the 2017 scripts were tuned for; given a Keras optimizer (TF 2
  spelling) they are TensorFlow 2's classes;
* ``import tensorflow`` in the user's module, and in the helper modules of
  its code directory it imports, yields the namespace
  (:func:`install`): those modules get their own ``__builtins__`` whose
  ``__import__`` maps ``tensorflow`` / ``tensorflow.*``
  (:data:`MODULE_PATHS`: ``tensorflow.python.estimator.*`` is
  ``tensorflow_estimator.python.estimator.*``). TensorFlow's own modules
  import through the real machinery and never see the namespace.

A name that neither has raises :class:`TF1AttributeError` (an
AttributeError), whose message names it and says what it is: TensorFlow 1.x
API with no TensorFlow 2.15 equivalent here (a ``tf.contrib`` module of
TensorFlow 1.x, :data:`CONTRIB_MODULES`, or TF 1's internal paths), or, since
``tf.compat.v1`` holds the rest of TensorFlow 1.x, a name in neither
TensorFlow 1.x nor 2.15 (a misspelling: the nearest name there is, if any,
is suggested). A helper module of the code directory that is Python 2 fails
with the Python 2 advice of :func:`~sagemaker_training.host.entry_point.python2_error`.

Only the legacy trainer child imports this module; TensorFlow is imported
when the user's code first imports it.
"""

from __future__ import annotations

import builtins
import difflib
import importlib
import importlib.abc
import importlib.machinery
import os
import sys
import types

from ...host import entry_point

TF1_HINT = "is TensorFlow 1.x API with no TensorFlow 2.15 equivalent here"
ADVICE = ("this container runs TensorFlow 1.x code on TensorFlow 2.15 through tf.compat.v1 and the tf.contrib "
          "pieces the SageMaker examples used; write that part in TensorFlow 2 (or tf.compat.v1) spelling")
NEITHER_HINT = "is in neither TensorFlow 1.x nor TensorFlow 2.15"
# The modules of TensorFlow 1.15's tf.contrib: a name under one of them is TF 1.x API.
CONTRIB_MODULES = frozenset("""
    all_reduce autograph batching bayesflow bigtable boosted_trees checkpoint cloud cluster_resolver coder
    compiler constrained_optimization copy_graph crf cudnn_rnn data decision_trees deprecated distribute
    distributions eager estimator factorization feature_column ffmpeg framework fused_conv gan graph_editor
    grid_rnn hadoop hooks image input_pipeline integrate kafka keras kernel_methods kinesis labeled_tensor layers
    learn legacy_seq2seq linear_optimizer lookup losses memory_stats meta_graph_transform metrics mixed_precision
    model_pruning nccl nearest_neighbor nn opt optimizer_v2 periodic_resample predictor proto quantization
    quantize rate receptive_field recurrent reduce_slice_ops remote_fused_graph resampler rnn rpc saved_model
    seq2seq session_bundle signal slim solvers sparsemax specs staging stat_summarizer stateless summary
    tensor_forest tensorboard testing text tfprof timeseries tpu training util""".split())

# TF 1 import paths that live elsewhere in 2.15: prefix -> ("module", real module) or ("attribute", path on tf).
MODULE_PATHS = (
    ("tensorflow.python.estimator", ("module", "tensorflow_estimator.python.estimator")),
    ("tensorflow.contrib.keras.python.keras", ("attribute", "keras")),
    ("tensorflow.contrib.keras", ("attribute", "keras")),
    ("tensorflow.python.keras", ("attribute", "keras")),
    ("tensorflow.contrib.learn.python.learn", ("attribute", "contrib.learn")),
)
# Top-level sub-packages that are TensorFlow's own modules (imported as they are).
INTERNAL_PACKAGES = ("python", "core", "tsl", "compiler", "lite", "tools")

# The dunder names of ``tensorflow`` that user code reads (others, such as __path__, are not the namespace's).
VERSION_NAMES = ("__version__", "__git_version__", "__compiler_version__", "__cxx11_abi_flag__",
                 "__monolithic_build__")

CANNED_ESTIMATORS = ("DNNClassifier", "DNNRegressor", "LinearClassifier", "LinearRegressor",
                     "DNNLinearCombinedClassifier", "DNNLinearCombinedRegressor", "BaselineClassifier",
                     "BaselineRegressor")
OPTIMIZER_ARGUMENTS = ("optimizer", "dnn_optimizer", "linear_optimizer")


def is_tf1_only(path: str) -> bool:
    """Whether the dotted ``tensorflow...`` path missing from TensorFlow 2.15
    and its tf.compat.v1 was TensorFlow 1.x API (under a tf.contrib module of
    TF 1, or TF 1's internal ``tensorflow.python`` paths); anything else
    would have been in tf.compat.v1."""
    parts = path.split(".")[1:]
    if parts[:1] == ["python"]:
        return True
    return parts[:1] == ["contrib"] and (len(parts) == 1 or parts[1] in CONTRIB_MODULES)


def missing_phrase(path: str, shown: str, near=()) -> str:
    """What to say after the missing name ``shown`` (``path`` spelled with
    ``tensorflow.``): TF 1.x API without an equivalent, or in neither version;
    either way naming the closest of the names ``near`` that exist, if one
    is close (a misspelling)."""
    leaf = path.rsplit(".", 1)[-1]
    close = difflib.get_close_matches(leaf, [n for n in near if not n.startswith("_")], n=1, cutoff=0.8)
    nearest = f"{shown.rsplit('.', 1)[0]}.{close[0]}" if close else None
    if is_tf1_only(path):
        return f"{TF1_HINT}{f', or a misspelling of {nearest}' if nearest else ''} ({ADVICE})"
    return f"{NEITHER_HINT}{f' (did you mean {nearest}?)' if nearest else ''}: check the spelling"


class TF1AttributeError(AttributeError):
    """A TensorFlow 1.x name that neither TensorFlow 2.15 nor the namespace has."""

    def __init__(self, name: str, phrase: str | None = None):
        super().__init__(f"{name} {phrase or f'{TF1_HINT} ({ADVICE})'}.")
        self.tf1_name = name


class Namespace(types.ModuleType):
    """One level of the TF 1.x namespace: ``extras`` first, then each of ``sources``.

    A sub-module found in the sources becomes a child namespace over that
    sub-module of every source that has it. Resolved names are cached in
    the instance, so the user's own assignments stay in the namespace.
    """

    def __init__(self, path: str, sources=(), extras: dict | None = None):
        super().__init__(path)
        self.__dict__["_sources"] = list(sources)
        self.__dict__["_extras"] = dict(extras or {})

    def __repr__(self):
        return f"<TensorFlow 1.x namespace {self.display_name()}>"

    def display_name(self, attribute: str | None = None) -> str:
        path = "tf" + self.__name__[len("tensorflow"):]
        return f"{path}.{attribute}" if attribute else path

    def __getattr__(self, name: str):
        if name.startswith("__") and name.endswith("__") and name not in VERSION_NAMES:
            raise AttributeError(name)
        value = self._resolve(name)
        self.__dict__[name] = value
        return value

    def __dir__(self):
        names = set(self._extras)
        for source in self._sources:
            names.update(n for n in dir(source) if not n.startswith("_"))
        return sorted(names)

    def _resolve(self, name: str):
        child_path = f"{self.__name__}.{name}"
        if name in self._extras:
            value = self._extras[name]
            return value(self) if isinstance(value, Lazy) else value
        found = []
        for source in self._sources:
            try:
                found.append(getattr(source, name))
            except AttributeError:
                continue
        if not found:
            shown = self.display_name(name)
            raise TF1AttributeError(shown, missing_phrase(child_path, shown, self.__dir__()))
        if not isinstance(found[0], types.ModuleType):
            return found[0]
        modules = [value for value in found if isinstance(value, types.ModuleType)]
        return Namespace(child_path, modules, extras=_extras_for(child_path))


class Lazy:
    """An extra computed from its namespace when first asked for."""

    def __init__(self, build):
        self.build = build

    def __call__(self, namespace):
        return self.build(namespace)


def _extras_for(path: str) -> dict:
    if path == "tensorflow.estimator":
        return {name: Lazy(lambda ns, name=name: canned_estimator(name)) for name in CANNED_ESTIMATORS}
    if path == "tensorflow.python":  # the MODULE_PATHS of TF 1's internals, reached as attributes
        return {"estimator": Lazy(lambda ns: importlib.import_module("tensorflow_estimator.python.estimator")),
                "keras": Lazy(lambda ns: namespace().keras)}
    return {}


_ROOT: dict = {}  # the process's one root namespace, made on first use


def namespace() -> Namespace:
    """The root ``tf`` of TensorFlow 1.x code (imports TensorFlow)."""
    _cache = _ROOT
    if "root" not in _cache:
        import tensorflow as tf  # noqa: PLC0415

        from . import contrib  # noqa: PLC0415

        internals = Lazy(lambda root: Namespace("tensorflow.python", [importlib.import_module("tensorflow.python")],
                                                extras=_extras_for("tensorflow.python")))
        _cache["root"] = Namespace("tensorflow", [tf.compat.v1, tf],
                                   extras={"contrib": Lazy(contrib.build), "python": internals})
    return _cache["root"]


# --------------------------------------------------------------------------
# Canned estimators: TF 1's classes, TF 2's for a Keras optimizer


def is_keras_optimizer(value) -> bool:
    """Whether an estimator's optimizer argument is a Keras optimizer (or a
    class or callable that makes one): the TF 2 spelling."""
    import tensorflow as tf  # noqa: PLC0415

    if value is None or isinstance(value, (str, tf.compat.v1.train.Optimizer)):
        return False
    keras_bases = (tf.keras.optimizers.Optimizer, tf.keras.optimizers.legacy.Optimizer)
    if isinstance(value, type):
        return issubclass(value, keras_bases)
    if isinstance(value, keras_bases):
        return True
    if not callable(value):
        return False
    with tf.Graph().as_default():  # a factory: what it makes, in a scratch graph
        try:
            return isinstance(value(), keras_bases)
        except Exception:  # noqa: BLE001 - the estimator calls it again and reports its failure
            return False


def canned_estimator(name: str):
    """``tf.estimator.<name>`` of TensorFlow 1.x code: TF 1's class (its own
    defaults), or TF 2's when given a Keras optimizer."""
    import tensorflow as tf  # noqa: PLC0415

    v1_class = getattr(tf.compat.v1.estimator, name)
    v2_class = getattr(tf.estimator, name)

    def __new__(cls, *args, **kwargs):
        if cls is canned and any(is_keras_optimizer(kwargs.get(arg)) for arg in OPTIMIZER_ARGUMENTS):
            return v2_class(*args, **kwargs)
        return super(canned, cls).__new__(cls)

    canned = type(name, (v1_class,), {"__new__": __new__, "__doc__": v1_class.__doc__,
                                      "__module__": v1_class.__module__})
    return canned


# --------------------------------------------------------------------------
# Imports


def _walk(root: Namespace, parts) -> object:
    value = root
    for part in parts:
        value = getattr(value, part)
    return value


def _names_beside(root: Namespace, name: str) -> list:
    """The names of the parent of the ``tensorflow...`` path ``name``, where it resolves."""
    try:
        return dir(_walk(root, name.split(".")[1:-1]))
    except AttributeError:
        return []


def _import_error(name: str) -> ModuleNotFoundError:
    phrase = missing_phrase(name, name, _names_beside(namespace(), name))
    return ModuleNotFoundError(f"No module named {name!r}: {name} {phrase}.", name=name)


def resolve(name: str):
    """What ``import <name>`` (a ``tensorflow`` path) gives TensorFlow 1.x code."""
    root = namespace()
    if name == "tensorflow":
        return root
    for prefix, (kind, target) in MODULE_PATHS:
        if name == prefix or name.startswith(prefix + "."):
            rest = name[len(prefix):]
            if kind == "module":
                try:
                    return importlib.import_module(target + rest)
                except ImportError:
                    raise _import_error(name) from None
            try:
                return _walk(root, (target + rest).split("."))
            except AttributeError:
                raise _import_error(name) from None
    parts = name.split(".")[1:]
    attempts = ("import", "walk") if parts[0] in INTERNAL_PACKAGES else ("walk", "import")
    for attempt in attempts:
        try:
            return importlib.import_module(name) if attempt == "import" else _walk(root, parts)
        except (ImportError, AttributeError):
            continue
    raise _import_error(name)


def _tf1_import(name, globals=None, locals=None, fromlist=(), level=0):  # noqa: A002 - __import__'s signature
    if level or not (name == "tensorflow" or name.startswith("tensorflow.")):
        return builtins.__import__(name, globals, locals, fromlist, level)
    target = resolve(name)
    if not fromlist:
        return namespace()  # `import tensorflow.x.y` binds the top package
    for attribute in fromlist:
        if attribute != "*" and not hasattr(target, attribute):
            try:
                resolve(f"{name}.{attribute}")
            except ImportError:
                path = f"{name}.{attribute}"
                raise ImportError(f"cannot import name {attribute!r} from {name}: {path} "
                                  f"{missing_phrase(path, path, dir(target))}.", name=name) from None
    return target


def module_builtins() -> dict:
    """``__builtins__`` of a module of TensorFlow 1.x code."""
    return {**builtins.__dict__, "__import__": _tf1_import}


class _TF1Loader(importlib.machinery.SourceFileLoader):
    """Loads a module of the user's code directory with :func:`module_builtins`;
    one that is Python 2 fails with the Python 2 advice, naming its file."""

    def exec_module(self, module):
        module.__dict__["__builtins__"] = module_builtins()
        try:
            super().exec_module(module)
        except SyntaxError:
            python2 = entry_point.python2_error(self.path)
            if python2 is None:
                raise
            raise python2 from None


class CodeDirFinder(importlib.abc.MetaPathFinder):
    """Finds the user's own modules (under ``code_dir``) and loads them as TF 1.x code."""

    def __init__(self, code_dir: str):
        self.code_dir = os.path.realpath(code_dir)

    def _inside(self, path: str) -> bool:
        path = os.path.realpath(path)
        return path == self.code_dir or path.startswith(self.code_dir + os.sep)

    def find_spec(self, fullname, path=None, target=None):  # noqa: ARG002
        search = [self.code_dir] if path is None else [p for p in path if self._inside(p)]
        if not search:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, search)
        if spec is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            return None
        spec.loader = _TF1Loader(spec.loader.name, spec.loader.path)
        return spec


def install(code_dir: str) -> None:
    """Make the user's helper modules in ``code_dir`` import TensorFlow 1.x code's namespace."""
    if not any(isinstance(finder, CodeDirFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, CodeDirFinder(code_dir))
