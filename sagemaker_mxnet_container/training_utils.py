"""``sagemaker_mxnet_container.training_utils`` as the MXNet examples' scripts use it.

* ``scheduler_host(hosts)``: the host that runs the kvstore scheduler of a
  distributed job, the first of the sorted host names (as this toolkit
  starts it; SM_HOSTS is sorted, so it is ``hosts[0]`` there);
* ``save(model_dir, model, current_host=None, hosts=None)``: on the
  scheduler host only (the one whose model dir is uploaded), write a bound
  ``mx.mod.Module`` as ``model-symbol.json``, ``model-0000.params`` and
  ``model-shapes.json``, the files the legacy default save writes.
  ``current_host`` and ``hosts`` default to ``SM_CURRENT_HOST`` and
  ``SM_HOSTS`` (one host when unset).
"""

from __future__ import annotations

import json
import os

from sagemaker_training.frameworks.mxnet.trainer import PARAMS_FILE, SHAPES_FILE, SYMBOL_FILE, write_module

SYMBOL_PATH, PARAMS_PATH, SHAPES_PATH = SYMBOL_FILE, PARAMS_FILE, SHAPES_FILE


def scheduler_host(hosts) -> str:
    """The host of ``hosts`` that runs the scheduler (and saves the model)."""
    if not hosts:
        raise ValueError("scheduler_host needs the job's host names, e.g. json.loads(os.environ['SM_HOSTS']).")
    return sorted(hosts)[0]


def save(model_dir: str, model, current_host: str | None = None, hosts=None) -> bool:
    """Write ``model`` to ``model_dir`` when this is the scheduler host; True if it did."""
    current_host = current_host or os.environ.get("SM_CURRENT_HOST")
    if hosts is None:
        hosts = json.loads(os.environ["SM_HOSTS"]) if os.environ.get("SM_HOSTS") else [current_host]
    if current_host is not None and current_host != scheduler_host(hosts):
        return False
    write_module(model, model_dir)
    return True
