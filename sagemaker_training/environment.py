"""The job as the platform describes it on disk, and the SM_* variables.

``Environment(base_dir)`` reads the three config files under
``<base_dir>/input/config`` once, at construction (never at import), and
validates them: a missing or malformed file is a ``ClientError`` that names
the file and what is wrong with it.

User scripts can use it too::

    from sagemaker_training import environment
    env = environment.Environment()
    env.channel_input_dirs["training"], env.hyperparameters, env.model_dir
"""

from __future__ import annotations

import os

from . import params
from .core import guarded_json
from .core import hyperparameters as hp
from .core import settings
from .errors import ClientError, remember_secret_hyperparameters, shown_value

DEFAULT_BASE_DIR = params.BASE_DIR
BASE_DIR_ENV = params.BASE_DIR_ENV


def base_dir_from(environ=None) -> str:
    environ = os.environ if environ is None else environ
    return environ.get(BASE_DIR_ENV) or DEFAULT_BASE_DIR


def _load_json(path: str, what: str):
    name = os.path.relpath(path, os.path.dirname(os.path.dirname(os.path.dirname(path))))
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ClientError(f"{name} is missing: the platform writes {what} there; create it (see CONTRACT.md section 2).")
    except OSError as exc:
        raise ClientError(f"{name} cannot be read ({exc.strerror}): check its permissions.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ClientError(f"{name} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}): "
                          "save the file as UTF-8.") from None
    try:
        return guarded_json.loads(text)
    except ValueError as exc:
        raise ClientError(f"{name} is not valid JSON ({exc}): fix the file.") from None
    except guarded_json.TooDeep:
        raise ClientError(f"{name} nests JSON more than {guarded_json.MAX_NESTING} levels deep: "
                          "flatten the file.") from None


def check_text(where: str, value) -> None:
    """Every string in ``value`` (keys included) free of NUL characters,
    which no environment variable or argument can carry (local mode checks
    a request's fields with it too). The message quotes no secret (errors.shown_value)."""
    for name, text in _named_strings(where, value):
        if "\x00" in text:
            raise ClientError(f"{where} has a NUL character in {shown_value(name, text)[:60]!r}: remove it.")


def _named_strings(where: str, value):
    """(where it is, text) of every string in ``value``, object keys included: a value's place
    names the keys above it, so that a secret-named entry is known as one."""
    stack = [(where, value)]
    while stack:
        place, item = stack.pop()
        if isinstance(item, str):
            yield place, item
        elif isinstance(item, dict):
            for key, child in item.items():
                stack.append((place, key))
                stack.append((f"{place}.{key}", child))
        elif isinstance(item, (list, tuple)):
            stack.extend((place, child) for child in item)


def check_channel_name(name: str, where: str = "input/config/inputdataconfig.json") -> None:
    """A channel name is a directory name and part of SM_CHANNEL_* (local mode checks requests with it too)."""
    if not name or name in (".", "..") or "/" in name or "=" in name or "\x00" in name:
        raise ClientError(f"{where}: channel name {name[:60]!r} is not usable as a directory and variable name "
                          "(empty, '.', '..', or holding '/', '=' or NUL): rename the channel, e.g. \"training\".")


def count_gpus(environ=None) -> int:
    """GPUs visible to this container (``SAGEMAKER_NUM_GPUS`` overrides)."""
    environ = os.environ if environ is None else environ
    override = settings.number("SAGEMAKER_NUM_GPUS", None, integer=True, environ=environ)
    if override is not None:
        return override
    try:  # os.listdir and a PATH walk: glob and shutil cost ~10 ms of imports on every start
        found = [name for name in os.listdir("/proc/driver/nvidia/gpus") if not name.startswith(".")]
    except OSError:
        found = []
    if found:
        return len(found)
    path = environ.get("PATH", os.defpath).split(os.pathsep)
    if any(d and os.access(os.path.join(d, "nvidia-smi"), os.X_OK) for d in path):
        import subprocess  # noqa: PLC0415

        try:
            out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            return 0
        return sum(1 for line in out.splitlines() if line.startswith("GPU "))
    return 0


def count_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class Environment:
    """The training job seen from one host. All paths are absolute."""

    def __init__(self, base_dir: str | None = None, environ=None):
        environ = os.environ if environ is None else environ
        self.base_dir = os.path.abspath(base_dir or base_dir_from(environ))
        self.input_dir = os.path.join(self.base_dir, "input")
        self.input_config_dir = os.path.join(self.input_dir, "config")
        self.input_data_dir = os.path.join(self.input_dir, "data")
        self.model_dir = os.path.join(self.base_dir, "model")
        self.output_dir = os.path.join(self.base_dir, "output")
        self.output_data_dir = os.path.join(self.output_dir, "data")
        self.output_intermediate_dir = os.path.join(self.output_dir, "intermediate")
        self.code_dir = os.path.join(self.base_dir, "code")
        self.checkpoint_dir = os.path.join(self.base_dir, "checkpoints")
        self._environ = environ

        raw = _load_json(os.path.join(self.input_config_dir, "hyperparameters.json"), "the job's hyperparameters")
        if not isinstance(raw, dict):
            raise ClientError("input/config/hyperparameters.json must be a JSON object of name to string value.")
        hp.check_names(raw)
        decoded = hp.decode(raw)
        check_text("input/config/hyperparameters.json", decoded)
        self.hyperparameters, toolkit = hp.split(decoded)
        hp.check_toolkit_types(toolkit)
        remember_secret_hyperparameters(decoded, hp.render)
        self.toolkit_settings = {**hp.TOOLKIT_DEFAULTS, **toolkit}
        self.additional_framework_parameters = {k: v for k, v in toolkit.items() if k not in hp.TOOLKIT_DEFAULTS}

        self.resource_config = _load_json(
            os.path.join(self.input_config_dir, "resourceconfig.json"), "the host list (resourceconfig.json)"
        )
        self._check_resource_config()
        check_text("input/config/resourceconfig.json", self.resource_config)
        self.hosts = sorted(self.resource_config["hosts"])
        self.current_host = self.resource_config["current_host"]
        self.network_interface_name = self.resource_config.get("network_interface_name") or "eth0"

        self.input_data_config = _load_json(
            os.path.join(self.input_config_dir, "inputdataconfig.json"), "the channel list (inputdataconfig.json)"
        )
        if not isinstance(self.input_data_config, dict) or not all(
            isinstance(v, dict) for v in self.input_data_config.values()
        ):
            raise ClientError(
                "input/config/inputdataconfig.json must map each channel name to an object "
                '(e.g. {"training": {"TrainingInputMode": "File"}}).'
            )
        check_text("input/config/inputdataconfig.json", self.input_data_config)
        for name in self.input_data_config:
            check_channel_name(name)
        self.channel_input_dirs = {
            name: os.path.join(self.input_data_dir, name) for name in self.input_data_config
        }
        self.num_cpus = count_cpus()
        self._num_gpus = None

    def _check_resource_config(self):
        rc = self.resource_config
        where = "input/config/resourceconfig.json"
        if not isinstance(rc, dict):
            raise ClientError(f'{where} must be a JSON object with "current_host" and "hosts".')
        hosts = rc.get("hosts")
        if not isinstance(hosts, list) or not hosts or not all(isinstance(h, str) and h for h in hosts):
            raise ClientError(f'{where}: "hosts" must be a non-empty list of host names, e.g. ["algo-1"].')
        if not isinstance(rc.get("current_host"), str) or rc["current_host"] not in hosts:
            raise ClientError(f'{where}: "current_host" must be one of "hosts" ({", ".join(hosts)}).')
        if len(set(hosts)) != len(hosts):
            raise ClientError(f'{where}: "hosts" lists a host twice.')

    # ------------------------------------------------------------------
    @property
    def num_gpus(self) -> int:
        if self._num_gpus is None:
            self._num_gpus = count_gpus(self._environ)
        return self._num_gpus

    @property
    def master_hostname(self) -> str:
        return self.hosts[0]

    @property
    def is_master(self) -> bool:
        return self.current_host == self.master_hostname

    @property
    def is_distributed(self) -> bool:
        return len(self.hosts) > 1

    @property
    def user_hyperparameters(self) -> dict:
        """What user code gets as hyperparameters: ``hyperparameters`` less tuning keys."""
        return hp.for_user_code(self.hyperparameters)

    @property
    def environ(self):
        """The process environment this job was read from (the ``SAGEMAKER_*`` knobs are in it)."""
        return self._environ

    def setting(self, name: str):
        """A ``sagemaker_*`` toolkit setting, with its default."""
        return self.toolkit_settings.get(name)

    @property
    def user_entry_point(self) -> str | None:
        return self.setting(params.PROGRAM)

    @property
    def module_name(self) -> str | None:
        program = self.user_entry_point
        if not program:
            return None
        return program[: -len(".py")] if program.endswith(".py") else program

    @property
    def module_dir(self) -> str | None:
        return self.setting(params.SUBMIT_DIRECTORY)

    @property
    def job_name(self) -> str | None:
        # the platform sets TRAINING_JOB_NAME per job; the hyperparameter may name something else
        # (under a tuning job the SDK sends the tuning job's name there), so the job's own name wins
        return self._environ.get("TRAINING_JOB_NAME") or self.setting(params.JOB_NAME)

    @property
    def region(self) -> str | None:
        return params.region_from(self._environ, self.setting(params.REGION), default=None)

    @property
    def log_level(self) -> int:
        level = self.setting(params.LOG_LEVEL)
        try:
            return int(level)
        except (TypeError, ValueError):
            return 20

    @property
    def framework_module(self) -> str | None:
        framework = self._environ.get("SAGEMAKER_FRAMEWORK")
        return f"sagemaker_training.frameworks.{framework}" if framework else None

    # ------------------------------------------------------------------
    def training_env(self) -> dict:
        """What SM_TRAINING_ENV holds: the whole job in one JSON object."""
        return {
            "additional_framework_parameters": self.additional_framework_parameters,
            "channel_input_dirs": self.channel_input_dirs,
            "current_host": self.current_host,
            "framework_module": self.framework_module,
            "hosts": self.hosts,
            "hyperparameters": self.user_hyperparameters,
            "input_config_dir": self.input_config_dir,
            "input_data_config": self.input_data_config,
            "input_dir": self.input_dir,
            "is_master": self.is_master,
            "job_name": self.job_name,
            "log_level": self.log_level,
            "master_hostname": self.master_hostname,
            "model_dir": self.model_dir,
            "module_dir": self.module_dir,
            "module_name": self.module_name,
            "network_interface_name": self.network_interface_name,
            "num_cpus": self.num_cpus,
            "num_gpus": self.num_gpus,
            "output_data_dir": self.output_data_dir,
            "output_dir": self.output_dir,
            "output_intermediate_dir": self.output_intermediate_dir,
            "resource_config": self.resource_config,
            "user_entry_point": self.user_entry_point,
        }

    def user_args(self) -> list[str]:
        return hp.to_cmd_args(self.user_hyperparameters)

    def sm_env_vars(self) -> dict[str, str]:
        """Every SM_* variable, valued as the SageMaker training toolkit does."""
        values = {
            "model_dir": self.model_dir,
            "channels": sorted(self.channel_input_dirs),
            "hps": self.user_hyperparameters,
            "current_host": self.current_host,
            "hosts": self.hosts,
            "num_gpus": self.num_gpus,
            "num_cpus": self.num_cpus,
            "log_level": self.log_level,
            "network_interface_name": self.network_interface_name,
            "user_args": self.user_args(),
            "input_dir": self.input_dir,
            "input_config_dir": self.input_config_dir,
            "output_dir": self.output_dir,
            "output_data_dir": self.output_data_dir,
            "output_intermediate_dir": self.output_intermediate_dir,
            "resource_config": self.resource_config,
            "input_data_config": self.input_data_config,
            "training_env": self.training_env(),
            "module_name": self.module_name,
            "module_dir": self.module_dir,
            "user_entry_point": self.user_entry_point,
            "framework_module": self.framework_module,
            "framework_params": self.additional_framework_parameters,
        }
        for name, path in self.channel_input_dirs.items():
            values[f"channel_{name}"] = path
        for name, value in self.user_hyperparameters.items():
            values[f"hp_{name}"] = value
        return {f"SM_{key.upper()}": hp.render(value) for key, value in values.items()}
