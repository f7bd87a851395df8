"""Hyperparameters: decoding both client encodings, splitting, rendering.

Every value in hyperparameters.json is a string. The SageMaker Python SDK
JSON-encodes each value (``"\\"iris.py\\""``, ``"1000"``); API, console and
Step Functions clients send plain strings (``"iris.py"``). A value is decoded
as JSON when it parses, otherwise kept as it is. Keys injected by tuning jobs
(``_tuning_objective_metric`` and friends, any key starting with ``_``) are
never JSON.
"""

from __future__ import annotations

import json

TOOLKIT_PREFIX = "sagemaker_"

# Keys a tuning job adds to the hyperparameters. The toolkit reads them (the
# TensorFlow runner's per-job checkpoint path), but, as in the SageMaker
# training toolkit, user code never gets them: an argparse script would stop
# at ``--_tuning_objective_metric``.
TUNING_KEYS = ("_tuning_objective_metric",)

# Defaults of the toolkit's own (sagemaker_*) settings.
TOOLKIT_DEFAULTS = {
    "sagemaker_program": None,
    "sagemaker_submit_directory": None,
    "sagemaker_region": None,
    "sagemaker_job_name": None,
    "sagemaker_container_log_level": 20,
    "sagemaker_enable_cloudwatch_metrics": False,
    "sagemaker_requirements": "requirements.txt",
    "sagemaker_parameter_server_enabled": False,
    "sagemaker_mpi_enabled": False,
    "sagemaker_multi_worker_mirrored_strategy_enabled": False,
}


def decode_value(key: str, raw):
    """Decode one value: JSON when it parses, the plain string otherwise."""
    if not isinstance(raw, str) or key.startswith("_"):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def decode(raw: dict) -> dict:
    return {key: decode_value(key, value) for key, value in raw.items()}


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
    """``--name value`` pairs, in the order given."""
    args: list[str] = []
    for name, value in hyperparameters.items():
        args.extend((f"--{name}", render_arg(value)))
    return args
