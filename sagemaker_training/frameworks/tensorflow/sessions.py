"""What the legacy trainer changes in TensorFlow 2.15's session machinery, and why.

Each function patches one TensorFlow class once per process (the trainer
child calls them after importing TensorFlow): a non-chief worker's poll for
the chief's session, the close of distributed sessions, and the Estimator
API's deprecation warnings.
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


def quiet_deprecations() -> None:
    """The whole Estimator API is deprecated in TensorFlow 2.15 and says so for
    every class this legacy interface uses; those warnings are not actionable
    here and bury the training log."""
    try:
        from tensorflow.python.util import deprecation  # noqa: PLC0415

        deprecation._PRINT_DEPRECATION_WARNINGS = False
    except (ImportError, AttributeError):
        pass
