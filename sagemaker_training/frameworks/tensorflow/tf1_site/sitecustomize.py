"""On PYTHONPATH of the processes of a TensorFlow 1.x script-mode job (see ``tf1_script``).

In a Python process the script starts (``subprocess.run([sys.executable,
...])``), ``import tensorflow`` in the ``__main__`` module or in a module of
the job's code dir gives the TF 1.x namespace in graph mode, as in the
script itself. A no-op unless ``SAGEMAKER_TF_API`` is ``1``; nothing is
imported until the user's code imports TensorFlow. Another ``sitecustomize``
on the path (the image's) still runs.
"""

import os


def _install():
    code_dir = os.environ.get("SAGEMAKER_TF1_CODE_DIR")
    if os.environ.get("SAGEMAKER_TF_API", "").strip() != "1" or not code_dir:
        return
    import builtins

    original = builtins.__import__
    prefixes = tuple({os.path.join(code_dir, ""), os.path.join(os.path.realpath(code_dir), "")})

    def _user_code(module_globals):
        if not module_globals:
            return False
        if module_globals.get("__name__") == "__main__":
            return True
        path = module_globals.get("__file__")
        return isinstance(path, str) and path.startswith(prefixes)

    def __import__(name, globals=None, locals=None, fromlist=(), level=0):  # noqa: A001, A002
        if not level and name.partition(".")[0] == "tensorflow" and _user_code(globals):
            from sagemaker_training.frameworks.tensorflow import tf1_script

            return tf1_script.hooked_import(name, globals, locals, fromlist, level)
        return original(name, globals, locals, fromlist, level)

    builtins.__import__ = __import__


def _chain():
    """Run the next ``sitecustomize`` on sys.path, the one this module hides."""
    import importlib.machinery
    import importlib.util
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is not None and spec.loader is not None:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)


_install()
_chain()
