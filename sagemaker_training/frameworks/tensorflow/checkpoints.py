"""Where a legacy TensorFlow job keeps its checkpoints, and the S3 mirror.

``checkpoint_path`` (a hyperparameter) is the Estimator's ``model_dir``:

* absent: the model dir (``/opt/ml/model``), as the 2017 containers did, so
  the checkpoints travel in ``model.tar.gz``;
* a local path: used as it is;
* ``s3://bucket/prefix``: the Estimator trains against the local directory
  ``/opt/ml/checkpoints`` (the contract's local checkpoint dir) and
  :class:`S3Mirror` (storage/mirror.py's logic) keeps the bucket in step with it, through storage/transfer.py
  rather than TensorFlow's own S3 filesystem: before training every object under
  the prefix is downloaded (so a second job with a higher
  ``training_steps`` resumes where the first stopped), new and changed files
  are uploaded every ``SAGEMAKER_TF_CHECKPOINT_SYNC_SECONDS`` (10) while it
  trains, deleted ones are deleted, and a last sync runs at the end.

In a tuning job (``_tuning_objective_metric`` among the hyperparameters) a
given ``checkpoint_path`` gets ``<job name>/checkpoints`` appended unless it
already ends so, so that the jobs of one tuning run do not share checkpoints.

Nothing here imports TensorFlow.
"""

from __future__ import annotations

import logging

from ... import params
from ...core import settings
from ...storage.mirror import DirectoryMirror
from ...storage.transfer import is_s3, join

SYNC_ENV = "SAGEMAKER_TF_CHECKPOINT_SYNC_SECONDS"
DEFAULT_SYNC_SECONDS = 10.0
INDEX_FILE = "checkpoint"  # tf.train.CheckpointState, rewritten after each save

log = logging.getLogger("sagemaker_training.tensorflow.checkpoints")


def checkpoint_path(hyperparameters: dict, job_name: str | None, model_dir: str) -> str:
    """The checkpoint location the contract asks for (local path or S3 URI)."""
    given = hyperparameters.get(params.CHECKPOINT_PATH)
    if given in (None, ""):
        return model_dir
    given = str(given)
    if "_tuning_objective_metric" not in hyperparameters or not job_name:
        return given
    if given.rstrip("/").endswith(f"{job_name}/checkpoints"):
        return given
    return join(given, job_name, "checkpoints")


def local_dir_for(path: str, local_checkpoint_dir: str) -> str:
    """The directory the Estimator writes to for ``path``."""
    return local_checkpoint_dir if is_s3(path) else path


def sync_seconds(environ=None) -> float:
    return settings.number(SYNC_ENV, DEFAULT_SYNC_SECONDS, minimum=0.01, environ=environ)


def _skipped(relative: str) -> bool:
    """Files TensorFlow is still writing: the saver's ``*_temp`` directories
    and the ``.tempstate`` files of atomic writes."""
    parts = relative.split("/")
    return any(p.endswith("_temp") or ".tempstate" in p or p.endswith(".tmp") for p in parts)


class S3Mirror(DirectoryMirror):
    """Keeps ``uri`` (an S3 prefix) a copy of ``local_dir`` (storage/mirror.py's
    logic): TensorFlow's half-written files are skipped, and the index file
    (``checkpoint``) is read first and uploaded last, so the bucket's index
    never names a checkpoint whose files are not there yet.

    Only the chief of a job writes checkpoints, so only the chief mirrors: in
    a parameter-server job its saver is not sharded (see
    ``sessions.unsharded_default_saver``), so every variable of the model is
    in the chief's one ``*.data-00000-of-00001`` file, and no parameter server
    needs the files (hosts share no file system).
    """

    def __init__(self, uri: str, local_dir: str, region: str | None = None, interval: float | None = None,
                 client=None):
        super().__init__(uri, local_dir, interval=sync_seconds() if interval is None else interval,
                         what=params.CHECKPOINT_PATH, region=region, client=client, skip=_skipped,
                         last=(INDEX_FILE,), log=log, thread_name="s3-checkpoint-mirror")
