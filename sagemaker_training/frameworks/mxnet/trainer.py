"""Child process of a legacy MXNet job: import the user module, call ``train``, save.

Run as ``python -m sagemaker_training.frameworks.mxnet.trainer`` with the
user's environment (``SAGEMAKER_BASE_DIR``, ``SM_*``, and on several hosts
``DMLC_ROLE=worker``). ``train`` gets the keyword arguments it declares out
of :data:`TRAIN_ARGUMENTS` (all of them when it takes ``**kwargs``). A model
it returns is saved by the module's ``save(model, model_dir)``, or else by
:func:`default_save` (an ``mx.mod.Module``); in a distributed job only the
first host saves, because its model dir is the one the platform uploads.
"""

from __future__ import annotations

import gc
import importlib.util
import inspect
import json
import logging
import os
import sys

from ... import errors
from ...environment import Environment
from ...errors import UserError

TRAIN_ARGUMENTS = (
    "hyperparameters", "input_data_config", "channel_input_dirs", "output_data_dir", "model_dir",
    "num_gpus", "num_cpus", "hosts", "current_host",
)

SYMBOL_FILE, PARAMS_FILE, SHAPES_FILE = "model-symbol.json", "model-0000.params", "model-shapes.json"

log = logging.getLogger("sagemaker_training.mxnet")


def available_arguments(env) -> dict:
    """The nine arguments: the Environment's attributes of the same names, the
    hyperparameters as user code gets them (decoded, without tuning keys)."""
    arguments = {name: getattr(env, name) for name in TRAIN_ARGUMENTS}
    arguments["hyperparameters"] = env.user_hyperparameters
    return arguments


def select_arguments(fn, available: dict) -> dict:
    """The keyword arguments of ``available`` that ``fn`` declares (all with ``**kwargs``).

    A parameter without a default that we cannot supply is a UserError naming it.
    """
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # no signature to read: offer everything
        return dict(available)
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return dict(available)
    chosen, missing = {}, []
    for p in parameters:
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name in available:
            chosen[p.name] = available[p.name]
        elif p.kind is not p.VAR_POSITIONAL and p.default is p.empty:
            missing.append(p.name)
    if missing:
        names = ", ".join(repr(name) for name in missing)
        raise UserError(
            f"train() requires {names}, which the toolkit cannot supply: it passes only keyword "
            f"arguments named {', '.join(TRAIN_ARGUMENTS)}. Rename the parameter, give it a default, "
            "or read the value from hyperparameters."
        )
    return chosen


def load_user_module(code_dir: str, program: str):
    """Import the entry point file as a top-level module named after it."""
    path = os.path.join(code_dir, program)
    directory = os.path.dirname(os.path.abspath(path))
    if directory not in sys.path:  # siblings import each other, as when the file runs as a script
        sys.path.insert(0, directory)
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # classes pickle by module name (a custom optimizer sent to the servers)
    with errors.user_code(f"importing {program}"):
        spec.loader.exec_module(module)
    return module


def default_save(model, model_dir: str, program: str) -> None:
    """``model-symbol.json``, ``model-0000.params`` and ``model-shapes.json`` of a Module."""
    import mxnet as mx  # noqa: PLC0415 - only the child that saves imports MXNet here

    if not isinstance(model, mx.mod.BaseModule):
        if isinstance(model, mx.gluon.Block):
            what, hint = f"a Gluon {type(model).__name__}", " (e.g. model.export(os.path.join(model_dir, 'model')))"
        else:
            what, hint = f"a {type(model).__module__}.{type(model).__qualname__}", ""
        raise UserError(
            f"train() returned {what}, which the default save cannot write (it saves an mx.mod.Module): "
            f"define save(model, model_dir) in {program}{hint}, or return None."
        )
    if not (model.binded and model.params_initialized):
        raise UserError(
            "train() returned a Module that is not bound with initialized parameters: call fit() (or bind() and "
            f"init_params()) before returning it, or define save(model, model_dir) in {program}."
        )
    write_module(model, model_dir)


def write_module(model, model_dir: str) -> None:
    """The three files of a bound ``mx.mod.Module``: ``model-symbol.json``,
    ``model-0000.params`` and ``model-shapes.json`` (a list of ``{"name",
    "shape"}`` of its data inputs). Also the save of the image helper
    ``sagemaker_mxnet_container.training_utils``."""
    model.symbol.save(os.path.join(model_dir, SYMBOL_FILE))
    model.save_params(os.path.join(model_dir, PARAMS_FILE))
    shapes = [{"name": desc.name, "shape": list(desc.shape)} for desc in model.data_shapes]
    with open(os.path.join(model_dir, SHAPES_FILE), "w", encoding="utf-8") as f:
        json.dump(shapes, f)


def save(module, model, env) -> None:
    program = env.user_entry_point
    if not env.is_master:  # the first host: its model dir is the one the platform uploads
        log.info("not saving the model on %s: in a distributed job only %s saves", env.current_host,
                 env.master_hostname)
        return
    user_save = getattr(module, "save", None)
    if callable(user_save):
        log.info("saving the model with save() of %s", program)
        with errors.user_code("save"):
            user_save(model, env.model_dir)
    else:
        log.info("saving the model with the default save")
        default_save(model, env.model_dir, program)


@errors.record
def main() -> None:
    env = Environment()
    logging.basicConfig(level=env.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    program = env.user_entry_point
    module = load_user_module(env.code_dir, program)
    train = getattr(module, "train", None)
    if not callable(train):
        raise UserError(f"train in {program} is a {type(train).__name__}, not a function: define "
                        "def train(hyperparameters, channel_input_dirs, ..., **kwargs).")
    kwargs = select_arguments(train, available_arguments(env))
    log.info("calling train(%s) of %s", ", ".join(kwargs), program)
    with errors.user_code("train"):
        model = train(**kwargs)
    if model is None:
        log.info("train() returned None: nothing to save")
        errors.mark_done()
        return
    save(module, model, env)
    errors.mark_done()  # what is left is the kvstore's shutdown barrier
    # Free the model now, while the interpreter is whole: a Module's dist kvstore
    # leaves the ps-lite job (the shutdown barrier every host waits on) when freed.
    del model, train
    gc.collect()


if __name__ == "__main__":
    main()
