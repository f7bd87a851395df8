"""The user's legacy TensorFlow module: which interface it has, loading it,
and calling its functions with the arguments they declare.

The decision legacy-or-script (:func:`is_legacy`) reads the module's syntax
tree, so a script-mode script is never imported or run twice. Loading
(:func:`load`, under the TensorFlow 1.x namespace of :mod:`.tf1`) and
calling happen only in the trainer child. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import os
import sys

from ...host import entry_point
from ...errors import ClientError, UserError, user_code

MODEL_FUNCTIONS = ("estimator_fn", "keras_model_fn", "model_fn")
INPUT_FUNCTIONS = ("train_input_fn", "eval_input_fn")

TRAINING_CHANNEL = "training"
# Input-function parameter name -> what it receives (the contract's aliases).
ALIASES = {
    "training_dir": "training_dir",
    "dir": "training_dir",
    "hyperparameters": "hyperparameters",
    "params": "hyperparameters",
    "input_channels": "input_channels",
    "channels": "input_channels",
}


def module_path(env) -> str | None:
    """The entry point's Python file, if it is one."""
    program = env.user_entry_point
    if not program:
        return None
    path = os.path.join(env.code_dir, program)
    if os.path.isfile(path) and path.endswith(".py"):
        return path
    candidate = os.path.join(env.code_dir, *program.removesuffix(".py").split(".")) + ".py"
    return candidate if os.path.isfile(candidate) else None


def is_legacy(env) -> bool:
    """Whether the entry point defines ``estimator_fn``, ``keras_model_fn`` or
    ``model_fn`` at top level (from its syntax tree, without running it; from
    its ``def`` lines when it is not Python 3) and has no
    ``if __name__ == "__main__":`` block (a script-mode script may define a
    ``model_fn`` for its own Estimator)."""
    path = module_path(env)
    return bool(path and (entry_point.defines_top_level(path, MODEL_FUNCTIONS)
                          or entry_point.defines_top_level_text(path, MODEL_FUNCTIONS))
                and not entry_point.has_main_guard(path))


def load(path: str, code_dir: str | None = None):
    """Import the user's module from its file (its directory first on sys.path)
    as TensorFlow 1.x code: ``import tensorflow`` in it, and in the helper
    modules of ``code_dir`` (default: its directory) it imports, gives the
    namespace of :mod:`.tf1`."""
    import importlib.util  # noqa: PLC0415 - the supervisor only reads the syntax tree

    from . import tf1  # noqa: PLC0415

    directory = os.path.dirname(os.path.abspath(path))
    if directory not in sys.path:
        sys.path.insert(0, directory)
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ClientError(f"{path} cannot be imported as a Python module: check sagemaker_program.")
    module = importlib.util.module_from_spec(spec)
    module.__dict__["__builtins__"] = tf1.module_builtins()
    tf1.install(code_dir or directory)
    sys.modules[name] = module
    with user_code(f"importing {os.path.basename(path)}"):
        spec.loader.exec_module(module)
    return module


def check(module, program: str) -> str:
    """The model function the module provides; a UserError when a required one is missing.

    The messages start with what is missing: the failure reason already
    names the process (the entry point).
    """
    given = [name for name in MODEL_FUNCTIONS if callable(getattr(module, name, None))]
    if not given:
        raise UserError(
            f"no estimator_fn, keras_model_fn or model_fn in {program} once imported: a legacy TensorFlow script "
            "must define one of them at top level."
        )
    missing = [name for name in INPUT_FUNCTIONS if not callable(getattr(module, name, None))]
    if missing:
        raise UserError(
            f"missing {' and '.join(missing)}: {program} defines {given[0]}, so it must also define "
            + " and ".join(f"{name}(training_dir, hyperparameters)" for name in missing)
            + ", returning (features, labels) or a tf.data.Dataset."
        )
    return given[0]


class InputArguments:
    """What an input function may ask for, and the channel checks."""

    def __init__(self, channel_dirs: dict, hyperparameters: dict, pipe_channels=()):
        self.channel_dirs = dict(channel_dirs)
        self.hyperparameters = hyperparameters
        self.pipe_channels = frozenset(pipe_channels)  # delivered as FIFOs <name>_<epoch>: no directory
        self.warned = False  # the missing 'training' channel is said once

    def value(self, canonical: str, function: str):
        if canonical == "hyperparameters":
            return self.hyperparameters
        if canonical == "input_channels":
            return dict(self.channel_dirs)
        return self.training_dir(function)

    def training_dir(self, function: str) -> str | None:
        """The ``training`` channel's directory; None, with a warning (once), in a job without that
        channel, as the legacy container passed (the pipe-mode example relies on it); a ClientError
        when the channel is configured in File mode but its directory is missing (a Pipe-mode channel
        has FIFOs beside that path instead, and gets the path, as the legacy container passed it)."""
        path = self.channel_dirs.get(TRAINING_CHANNEL)
        existing = sorted(name for name, p in self.channel_dirs.items() if os.path.isdir(p))
        have = ", ".join(f"{name} ({self.channel_dirs[name]})" for name in existing) or "none"
        if path is None:
            if not self.warned:
                self.warned = True
                import logging  # noqa: PLC0415 - the trainer child's; the supervisor imports this module too

                logging.getLogger("sagemaker_training.tensorflow").warning(
                    "%s asks for training_dir but the job has no 'training' channel: it gets None, as in the "
                    "legacy container; channels there are: %s (name the training data channel 'training', or "
                    "read the others through an input_channels argument)", function, have)
            return None
        if not os.path.isdir(path) and TRAINING_CHANNEL not in self.pipe_channels:
            raise ClientError(
                f"{function} asks for training_dir but the job has no directory {path}; channel directories "
                f"present: {have}. Check the 'training' channel of the job's InputDataConfig "
                "(or read another channel through an input_channels argument)."
            )
        return path

    def for_function(self, fn, function: str) -> tuple[list, dict]:
        """(positional args, keyword args) for ``fn``, by the names it declares.

        Known names (and their aliases) get their values, parameters with a
        default keep it, any other name gets None; ``**kwargs`` receives
        training_dir (when the channel exists), hyperparameters and
        input_channels.
        """
        import inspect  # noqa: PLC0415

        try:
            signature = inspect.signature(fn)
        except (TypeError, ValueError):  # a builtin or C function: the 2017 calling convention
            return [self.training_dir(function), self.hyperparameters], {}
        args: list = []
        kwargs: dict = {}
        for parameter in signature.parameters.values():
            if parameter.kind is parameter.VAR_POSITIONAL:
                continue
            if parameter.kind is parameter.VAR_KEYWORD:
                for name in ("hyperparameters", "input_channels"):
                    kwargs.setdefault(name, self.value(name, function))
                if TRAINING_CHANNEL in self.channel_dirs:
                    kwargs.setdefault("training_dir", self.channel_dirs[TRAINING_CHANNEL])
                continue
            canonical = ALIASES.get(parameter.name)
            if canonical is not None:
                value = self.value(canonical, function)
            elif parameter.default is not parameter.empty:
                continue
            else:
                value = None
            if parameter.kind is parameter.POSITIONAL_ONLY:
                args.append(value)
            else:
                kwargs[parameter.name] = value
        return args, kwargs

    def bind(self, fn, function: str):
        """A no-argument callable that calls ``fn`` as user code.

        Arguments are worked out now, so a missing channel fails before any
        training starts.
        """
        args, kwargs = self.for_function(fn, function)

        def call():
            with user_code(function):
                return fn(*args, **kwargs)

        call.__name__ = function
        return call
