"""Child process for the scheduler and server roles of MXNet's ps-lite kvstore.

With ``DMLC_ROLE=scheduler`` or ``server`` in the environment, ``import
mxnet`` itself runs the node (``mxnet.kvstore.kvstore_server``): it serves
until every worker has left the job (the workers' kvstore shutdown barrier)
and then calls ``sys.exit()``. This module wraps that import so that a
failure reaches the supervisor as an error record, and SIGTERM or SIGINT end
the node at once (its main thread is in MXNet's native loop, where no Python
handler could run).
"""

from __future__ import annotations

import os
import signal

from ... import errors
from ...errors import PlatformError, ToolkitError

ROLES = ("scheduler", "server")


@errors.record
def main() -> None:
    role = os.environ.get("DMLC_ROLE")
    if role not in ROLES:
        raise ToolkitError(f"the MXNet kvstore node needs DMLC_ROLE set to one of {', '.join(ROLES)}, got {role!r}.")
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # the node runs in native code: Python's handler would never run
    try:
        import mxnet  # noqa: F401, PLC0415 - the import runs the node until the job ends
    except SystemExit as exc:  # how kvstore_server ends a node that finished
        if exc.code not in (None, 0):
            raise
        return
    except Exception as exc:  # noqa: BLE001 - MXNetError, without importing mxnet.base here
        if role == "scheduler" and "bind failed" in str(exc):
            where = f"{os.environ.get('DMLC_PS_ROOT_URI')}:{os.environ.get('DMLC_PS_ROOT_PORT')}"
            raise PlatformError(f"the MXNet scheduler cannot listen on {where} (bind failed): another process "
                                "holds the port or the address is not this host's; SAGEMAKER_MXNET_PORT sets "
                                "the port.") from exc
        raise
    raise ToolkitError(f"import mxnet returned without running the {role} (DMLC_ROLE={role}); "
                       "this MXNet build may lack the distributed kvstore.")


if __name__ == "__main__":
    main()
