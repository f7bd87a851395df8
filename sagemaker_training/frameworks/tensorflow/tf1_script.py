"""TensorFlow 1.x script mode: the child that runs a TF 1.x script on TensorFlow 2.15.

Run as ``python -m sagemaker_training.frameworks.tensorflow.tf1_script SCRIPT
[ARGS...]`` when :mod:`.api` chose the TF 1.x API (see :mod:`.runner`). Before
the script's first line it

1. installs the TF 1.x namespace of :mod:`.tf1` for the script and the
   helper modules of its code dir (``import tensorflow`` gives it);
2. turns TensorFlow 2 behaviour off (``tf.compat.v1.disable_v2_behavior()``:
   graph mode, TF 1 shapes and variables, as TensorFlow 1.x ran);
3. sets ``sys.argv`` to ``[SCRIPT, ARGS...]`` and ``sys.path[0]`` to the
   script's directory, as ``python SCRIPT ARGS...`` does;
4. for an S3 ``model_dir`` (given to the script as a local dir by the
   runner), restores the local dir from S3 and keeps S3 in step with it
   (:func:`model_dir_mirror`, on the chief),

then runs the script as ``__main__`` (``tf.app.run()`` finds its ``main``,
flags parse its arguments). Python processes the script starts keep the
choice through :mod:`.tf1_site` (``sitecustomize``), which calls
:func:`hooked_import`.

Imports nothing of the supervisor; TensorFlow is imported here, by the child.
"""

from __future__ import annotations

import importlib
import os
import sys

MODULE = "sagemaker_training.frameworks.tensorflow.tf1_script"
# The code dir of the job, for the sitecustomize hook of the script's own Python processes.
CODE_DIR_ENV = "SAGEMAKER_TF1_CODE_DIR"
# JSON {"s3", "local", "region"}: the script's S3 model_dir, trained against the local dir (runner.tf1_model_dir)
MODEL_DIR_ENV = "SAGEMAKER_TF1_MODEL_DIR"
SITE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tf1_site")

_READY: list = []


def prepare():
    """The TF 1.x namespace, with TensorFlow 2 behaviour off (once per process)."""
    from . import tf1  # noqa: PLC0415

    root = tf1.namespace()
    if not _READY:
        tensorflow = importlib.import_module("tensorflow")  # the real one, whatever __import__ is
        deprecation = importlib.import_module("tensorflow.python.util.deprecation")
        with deprecation.silence():  # our call, not the user's: no "non-resource variables" notice in every job
            tensorflow.compat.v1.disable_v2_behavior()
        _READY.append(True)
    return root


def hooked_import(name, globals=None, locals=None, fromlist=(), level=0):  # noqa: A002 - __import__'s signature
    """``import tensorflow...`` of the user's code in a process the script started."""
    from . import tf1  # noqa: PLC0415

    prepare()
    return tf1.tf1_import(name, globals, locals, fromlist, level)


def model_dir_mirror(environ=None):
    """The S3 mirror of the script's model_dir (started), on the chief of the job; None without one.
    In a parameter-server job the Estimator's default saver is not sharded, so the chief's local
    directory holds whole checkpoints (see ``sessions.unsharded_default_saver``)."""
    import json  # noqa: PLC0415

    environ = os.environ if environ is None else environ
    given = environ.get(MODEL_DIR_ENV)
    if not given:
        return None
    from . import checkpoints, sessions  # noqa: PLC0415

    target = json.loads(given)
    tf_config = json.loads(environ.get("TF_CONFIG") or "{}")
    if tf_config.get("cluster"):
        sessions.unsharded_default_saver()  # hosts share no file system
    if (tf_config.get("task") or {}).get("type") not in (None, "master", "chief"):
        return None
    os.makedirs(target["local"], exist_ok=True)
    mirror = checkpoints.S3Mirror(target["s3"], target["local"], target.get("region"))
    mirror.restore()
    mirror.start()
    return mirror


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        sys.stderr.write(f"usage: python -m {MODULE} SCRIPT [ARGS...]\n")
        sys.exit(2)
    import runpy  # noqa: PLC0415 - the supervisor imports this module for its names

    from . import tf1  # noqa: PLC0415

    script = os.path.abspath(argv[0])
    code_dir = os.environ.get(CODE_DIR_ENV) or os.path.dirname(script)
    tf1.install(code_dir)
    prepare()
    mirror = model_dir_mirror()
    sys.argv = [script, *argv[1:]]
    sys.path[0] = os.path.dirname(script)
    succeeded = False
    try:
        runpy.run_path(script, init_globals={"__builtins__": tf1.module_builtins()}, run_name="__main__")
        succeeded = True
    except SystemExit as exc:
        succeeded = exc.code in (None, 0)
        raise
    finally:
        if mirror is not None:
            try:
                mirror.stop()  # the last sync
            except Exception as exc:  # noqa: BLE001
                if succeeded:
                    raise
                sys.stderr.write(f"uploading the model_dir to S3 failed: {type(exc).__name__}: {exc}\n")


if __name__ == "__main__":
    main()
