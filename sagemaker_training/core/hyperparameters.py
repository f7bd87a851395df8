"""Hyperparameters: decoding both client encodings, checking, splitting, rendering.

Every value in hyperparameters.json is a string. The SageMaker Python SDK
JSON-encodes each value (``"\\"iris.py\\""``, ``"1000"``); API, console and
Step Functions clients send plain strings (``"iris.py"``). A value is decoded
as JSON when it parses, otherwise kept as it is. Keys injected by tuning jobs
(``_tuning_objective_metric`` and friends, any key starting with ``_``) are
never JSON.

Names must fit in an environment variable name (no ``=``, no NUL); JSON
values may nest at most ``MAX_NESTING`` levels; the toolkit's file and
location settings (``sagemaker_program`` ...) must be strings. Arguments are
sorted by name, as the SageMaker training toolkit sorts them.
"""

from __future__ import annotations

import json

from .. import params
from ..errors import ClientError
from . import guarded_json
from .guarded_json import MAX_NESTING, _children, too_deep  # noqa: F401 - read through hyperparameters

TOOLKIT_PREFIX = "sagemaker_"

# Keys a tuning job adds to the hyperparameters. The toolkit reads them (the
# TensorFlow runner's per-job checkpoint path), but, as in the SageMaker
# training toolkit, user code never gets them: an argparse script would stop
# at ``--_tuning_objective_metric``.
TUNING_KEYS = ("_tuning_objective_metric",)

# Defaults of the toolkit's own (sagemaker_*) settings.
TOOLKIT_DEFAULTS = {
    params.PROGRAM: None,
    params.SUBMIT_DIRECTORY: None,
    params.REGION: None,
    params.JOB_NAME: None,
    params.LOG_LEVEL: 20,
    params.CLOUDWATCH_METRICS: False,
    params.REQUIREMENTS: "requirements.txt",
    params.PARAMETER_SERVER: False,
    params.MPI_ENABLED: False,
    params.MULTI_WORKER_MIRRORED: False,
}


# Toolkit settings that name a file, a module or a location: strings only.
_STRING_SETTINGS = (params.PROGRAM, params.SUBMIT_DIRECTORY, params.REQUIREMENTS, params.REGION)


def strings(value):
    """Every string in a decoded JSON value, object keys included."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        else:
            stack.extend(_children(item))


def decode_value(key: str, raw):
    """Decode one value: JSON when it parses, the plain string otherwise.

    JSON nested more than MAX_NESTING levels is a ClientError.
    """
    if not isinstance(raw, str) or key.startswith("_"):
        return raw
    try:
        return guarded_json.loads(raw)
    except ValueError:
        return raw
    except guarded_json.TooDeep:
        raise ClientError(f"hyperparameter {key[:60]!r} is JSON nested more than {MAX_NESTING} levels deep: "
                          "flatten its value.") from None


def decode(raw: dict) -> dict:
    return {key: decode_value(key, value) for key, value in raw.items()}


def check_names(raw: dict) -> None:
    """Every name usable as an argument and in an SM_HP_* variable name."""
    for name in raw:
        if "=" in name or "\x00" in name:
            raise ClientError(f"hyperparameter name {name[:60]!r} holds {'=' if '=' in name else 'a NUL character'}, "
                              "which no environment variable name can: rename the hyperparameter.")


def check_toolkit_types(toolkit: dict) -> None:
    """The toolkit's file and location settings are strings (or absent)."""
    for name in _STRING_SETTINGS:
        value = toolkit.get(name)
        if value is not None and not isinstance(value, str):
            raise ClientError(f"hyperparameter {name} must be a string (a file, module or location name), not "
                              f"{type(value).__name__} {json.dumps(value)[:60]}: set it to a name such as "
                              "\"train.py\".")


def split(decoded: dict) -> tuple[dict, dict]:
    """(user hyperparameters, toolkit settings); order of the file is kept."""
    user = {k: v for k, v in decoded.items() if not k.startswith(TOOLKIT_PREFIX)}
    toolkit = {k: v for k, v in decoded.items() if k.startswith(TOOLKIT_PREFIX)}
    return user, toolkit


def for_user_code(hyperparameters: dict) -> dict:
    """The hyperparameters user code gets (arguments, SM_HPS, SM_HP_*): without tuning keys."""
    return {k: v for k, v in hyperparameters.items() if k not in TUNING_KEYS}


def as_bool(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def render(value) -> str:
    """A value as an SM_* environment variable, as the SageMaker toolkit writes it.

    Strings stay as they are, None is empty, everything else is compact JSON
    with sorted keys.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def render_arg(value) -> str:
    """A value as a command-line argument, as the SageMaker toolkit writes it:
    dicts become ``k=v,k2=v2``, None is empty, anything else is ``str()``."""
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in sorted(value.items()))
    return "" if value is None else str(value)


def to_cmd_args(hyperparameters: dict) -> list[str]:
    """``--name value`` pairs sorted by name, as sagemaker_training.mapping.to_cmd_args
    writes them: a one-character name is ``-x``, an empty one an empty string."""
    args: list[str] = []
    for name in sorted(hyperparameters):
        flag = f"--{name}" if len(name) > 1 else f"-{name}" if name else ""
        args.extend((flag, render_arg(hyperparameters[name])))
    return args
