"""What the legacy trainer changes in TensorFlow 2.15's session machinery, and why.

Each function patches one TensorFlow class once per process (the trainer
child calls them after importing TensorFlow): a non-chief worker's poll for
the chief's session, the close of distributed sessions, the Estimator's
default checkpoint saver in a distributed job, and the Estimator API's
deprecation warnings.
"""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("sagemaker_training.tensorflow")


def poll_for_chief_every(seconds: int) -> None:
    """Make non-chief workers poll for the chief's session every ``seconds``
    instead of TensorFlow's 30 s, so a worker that starts before the chief has
    initialized the variables does not idle half a minute."""
    from tensorflow.python.training import session_manager  # noqa: PLC0415

    manager = session_manager.SessionManager
    if getattr(manager, "_sagemaker_patched", False):
        return
    original = manager.__init__

    def __init__(self, *args, **kwargs):
        if len(args) < 5:
            kwargs.setdefault("recovery_wait_secs", seconds)
        original(self, *args, **kwargs)

    manager.__init__ = __init__
    manager._sagemaker_patched = True


def bound_session_close(bound: float) -> None:
    """Bound the close of distributed (``grpc://``) sessions to ``bound`` seconds.

    In TensorFlow 2.15, the second of master and worker to close its
    training session blocks 3-4 s in ``TF_CloseSession`` once the other
    trainer process has exited (gRPC reconnecting to the departed task),
    which delays every host's end. Nothing the job keeps depends on that
    close: the checkpoint, evaluation and export are done by then, and the
    parameter servers are stopped next. The close goes on in a daemon
    thread that holds the session (so it is not deleted under it) and the
    process exits when its work is done.
    """
    from tensorflow.python.client import session as session_lib  # noqa: PLC0415

    base = session_lib.BaseSession
    if getattr(base, "_sagemaker_bounded_close", False):
        return
    original = base.close

    def close(self):
        target = self._target.decode() if isinstance(self._target, bytes) else str(self._target or "")
        if not target.startswith("grpc://"):
            return original(self)
        errors_seen = []

        def run():
            try:
                original(self)
            except Exception as exc:  # noqa: BLE001
                errors_seen.append(exc)

        thread = threading.Thread(target=run, name="tf-session-close", daemon=True)
        thread.start()
        thread.join(bound)
        if thread.is_alive():
            log.info("closing the TensorFlow session to %s took over %gs (a peer task has ended); going on",
                     target, bound)
        elif errors_seen:
            raise errors_seen[0]

    base.close = close
    base._sagemaker_bounded_close = True


def unsharded_default_saver() -> None:
    """Make the Estimator's default saver write one checkpoint on the chief.

    The Estimator's default ``Saver`` is sharded: each device that holds
    variables (every parameter server) saves its own shard, to the chief's
    checkpoint path *on its own file system*, and the chief then merges the
    shards. That works only where all hosts share one file system; SageMaker
    hosts do not, so the chief's ``MergeV2Checkpoints`` finds no shard (and
    a resumed job's parameter servers would find nothing to restore). Not
    sharded, the save op runs on the chief: it reads the variables from the
    parameter servers over gRPC and writes ``*.data-00000-of-00001`` in its
    checkpoint directory, which the S3 mirror uploads; restoring reads that
    file on the chief and assigns the variables over gRPC.

    Only the saver the Estimator adds when the model has none changes (same
    ``keep_checkpoint_*`` settings and relative paths): a saver the user's
    ``model_fn`` puts in its ``Scaffold`` or in the ``SAVERS`` collection is
    used as it is.
    """
    from tensorflow.python.framework import ops  # noqa: PLC0415
    from tensorflow.python.training import saver as saver_lib  # noqa: PLC0415
    from tensorflow_estimator.python.estimator import estimator as estimator_lib  # noqa: PLC0415

    estimator = estimator_lib.Estimator  # TF 1's and TF 2's (EstimatorV2 subclasses it)
    if getattr(estimator, "_sagemaker_unsharded_saver", False):
        return
    original = estimator._train_with_estimator_spec

    def _train_with_estimator_spec(self, estimator_spec, *args, **kwargs):
        if not (estimator_spec.scaffold.saver or ops.get_collection(ops.GraphKeys.SAVERS)):
            ops.add_to_collection(ops.GraphKeys.SAVERS, saver_lib.Saver(
                sharded=False, max_to_keep=self._config.keep_checkpoint_max,
                keep_checkpoint_every_n_hours=self._config.keep_checkpoint_every_n_hours,
                defer_build=True, save_relative_paths=True))
        return original(self, estimator_spec, *args, **kwargs)

    estimator._train_with_estimator_spec = _train_with_estimator_spec
    estimator._sagemaker_unsharded_saver = True


def quiet_deprecations() -> None:
    """The whole Estimator API is deprecated in TensorFlow 2.15 and says so for
    every class this legacy interface uses; those warnings are not actionable
    here and bury the training log."""
    try:
        from tensorflow.python.util import deprecation  # noqa: PLC0415

        deprecation._PRINT_DEPRECATION_WARNINGS = False
    except (ImportError, AttributeError):
        pass
