"""Local mode's input: a CreateTrainingJob request, read and checked.

``sagemaker-training local`` takes the request body in the API's own JSON
shape (what ``boto3.client("sagemaker").create_training_job(**body)`` takes,
and what DescribeTrainingJob echoes back). :func:`validate` checks it the way
the API does, before anything starts, and raises :class:`RequestError` with
one line that names the field (``ResourceConfig.InstanceCount must be at
least 1, got 0``). The flags form (flags.py) builds the same body, the
way the SageMaker Python SDK's ``fit()`` does.

Local mode extends the API in two places only: a channel's ``S3Uri`` and
``OutputDataConfig.S3OutputPath`` may also be a local path or ``file://``
URI, so that a job can run with no S3 at all.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from .. import params
from ..storage import uri as uri_rules
from ..environment import check_channel_name, check_text
from ..errors import ClientError, is_secret_name, shown_value
from ..core.hyperparameters import check_names, decode_value

FRAMEWORKS = ("tensorflow", "mxnet")
SCRIPT = "script"  # --framework script: the plain script runner, no framework
DEFAULT_MAX_RUN = 24 * 60 * 60  # the API's default MaxRuntimeInSeconds
MAX_RUN_LIMIT = 28 * 24 * 60 * 60  # the platform's longest MaxRuntimeInSeconds (28 days)
TOOLKIT_ENV_PREFIX = "SAGEMAKER_"  # the toolkit's own knobs: local mode sets them, a request may not
USER_KNOBS = ("SAGEMAKER_TF_API",)  # ... except these, which say what the user's code is
DEFAULT_INSTANCE_TYPE = "ml.m5.large"
DEFAULT_VOLUME_GB = 30
ACCOUNT = params.ACCOUNT  # the account of ARNs and default buckets

_JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_CHANNEL_NAME = re.compile(r"^[A-Za-z0-9.\-_]{1,64}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,511}$")  # the API's pattern for Environment keys
_ROLE_ARN = re.compile(r"^arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$")

# Top-level request fields the API knows. Local mode acts on the first group,
# echoes the second (they change nothing on one machine), refuses the rest.
_USED = {
    "TrainingJobName", "AlgorithmSpecification", "HyperParameters", "InputDataConfig", "OutputDataConfig",
    "ResourceConfig", "StoppingCondition", "RoleArn", "Environment", "CheckpointConfig",
}
_ECHOED = {
    "Tags", "VpcConfig", "EnableNetworkIsolation", "EnableInterContainerTrafficEncryption",
    "EnableManagedSpotTraining", "DebugHookConfig", "DebugRuleConfigurations", "ProfilerConfig",
    "ProfilerRuleConfigurations", "ExperimentConfig", "TensorBoardOutputConfig", "RetryStrategy",
    "RemoteDebugConfig", "InfraCheckConfig", "SessionChainingConfig", "MlflowConfig", "ModelPackageConfig",
    "ServerlessJobConfig",
}


class RequestError(Exception):
    """A bad request: one line naming the field. Nothing has been started."""

    exit_code = 2


def fail(message: str):
    raise RequestError(" ".join(message.split()))


def _host_rule(check, *args, field: str | None = None):
    """A rule the host's ``train`` applies to its config files, applied to the
    request before anything starts: its ClientError becomes a bad request
    (after ``field``, when its message does not start with the field)."""
    try:
        return check(*args)
    except ClientError as exc:
        fail(f"{field}: {exc}" if field else str(exc))


@dataclass
class Channel:
    name: str
    uri: str  # s3://bucket/prefix, or an absolute local path
    content_type: str | None = None
    distribution: str = "FullyReplicated"
    input_mode: str = "File"
    record_wrapper: str = "None"
    field: str = ""  # InputDataConfig[i].DataSource.S3DataSource.S3Uri, for messages

    @property
    def is_s3(self) -> bool:
        return uri_rules.is_s3(self.uri)

    def data_config(self) -> dict:
        """This channel's entry in inputdataconfig.json."""
        config = {
            "TrainingInputMode": self.input_mode,
            "S3DistributionType": self.distribution,  # the container's name for S3DataDistributionType
            "RecordWrapperType": self.record_wrapper,
        }
        if self.content_type:
            config["ContentType"] = self.content_type
        return config


@dataclass
class TrainingRequest:
    """A validated request: ``body`` is the request as given, the rest is read from it."""

    body: dict
    job_name: str
    image: str
    framework: str
    hyperparameters: dict
    channels: list
    output_path: str  # s3://bucket/prefix (no trailing slash) or an absolute local dir
    instance_count: int
    max_run: int
    environment: dict = field(default_factory=dict)
    checkpoint: object = None  # local_checkpoints.CheckpointConfig, from CheckpointConfig
    decoded: dict = field(default_factory=dict)  # the hyperparameters decoded, once, as the hosts decode them

    @property
    def hosts(self) -> list[str]:
        return [f"algo-{i}" for i in range(1, self.instance_count + 1)]

    def artifact_location(self, name: str) -> str:
        """``<S3OutputPath>/<job>/output/<name>`` (an S3 URI or a local path)."""
        return uri_rules.artifact_location(self.output_path, self.job_name, name)

    def s3_uris(self) -> list[str]:
        """Every s3:// URI the job reads or writes (to find the buckets)."""
        uris = [c.uri for c in self.channels if c.is_s3]
        if uri_rules.is_s3(self.output_path):
            uris.append(self.output_path)
        if self.checkpoint is not None:
            uris.append(self.checkpoint.s3_uri)
        for key in (params.SUBMIT_DIRECTORY, params.CHECKPOINT_PATH):
            value = self.decoded.get(key)
            if uri_rules.is_s3(value):
                uris.append(value)
        return uris

    def written_s3_uris(self) -> list[str]:
        """The s3:// URIs the job writes to: output path, checkpoints."""
        channel_uris = {c.uri for c in self.channels}
        return [u for u in self.s3_uris() if u not in channel_uris]


# ---------------------------------------------------------------------------
# Locations


def split_s3(uri: str, field_name: str) -> tuple[str, str]:
    """(bucket, key) of an s3:// URI (storage's one parser), or a RequestError naming the field."""
    return _host_rule(uri_rules.parse_s3, uri, field_name)


def normalize_location(value, field_name: str, what: str) -> str:
    """An s3:// URI kept as it is, or a local path / file:// URI made absolute (storage/uri.py's rule)."""
    if not isinstance(value, str) or not value.strip():
        fail(f"{field_name} is required: {what}.")
    return _host_rule(uri_rules.normalize, value.strip(), field_name)


# ---------------------------------------------------------------------------
# Validation


def framework_from_image(image: str) -> str | None:
    """The framework an image URI names (``...sagemaker-tensorflow:1.4.1-cpu-py2`` → tensorflow)."""
    named = [f for f in FRAMEWORKS if f in image.lower()]
    return named[0] if len(named) == 1 else None


def _object(body: dict, name: str, required: bool = True) -> dict:
    value = body.get(name)
    if value is None:
        if required:
            fail(f"{name} is required.")
        return {}
    if not isinstance(value, dict):
        fail(f"{name} must be a JSON object, got {type(value).__name__}.")
    return value


def _decoded_hyperparameter(key: str, value: str):
    decoded = decode_value(key, value)
    check_text(f"HyperParameters.{key}", decoded)
    return decoded


def _int(value, field_name: str, minimum: int, maximum: int | None = None, default=None) -> int:
    if value is None and default is not None:
        return default
    if value is None:
        fail(f"{field_name} is required.")
    if isinstance(value, bool) or not isinstance(value, int):
        fail(f"{field_name} must be an integer, got {json.dumps(value)}.")
    if value < minimum:
        fail(f"{field_name} must be at least {minimum}, got {value}.")
    if maximum is not None and value > maximum:
        fail(f"{field_name} must be at most {maximum}, got {value}.")
    return value


def _string(value, field_name: str, required: bool = True) -> str | None:
    if value is None or value == "":
        if required:
            fail(f"{field_name} is required.")
        return None
    if not isinstance(value, str):
        fail(f"{field_name} must be a string, got {json.dumps(value)}.")
    return value


def _choice(value, field_name: str, choices, default: str, unsupported=()) -> str:
    if value is None:
        return default
    if value in unsupported:
        fail(f"{field_name}={value} is not supported in local mode; use {default}.")
    if value not in choices:
        fail(f"{field_name} must be one of {', '.join(choices)}, got {json.dumps(value)}.")
    return value


def _channels(body: dict) -> list[Channel]:
    config = body.get("InputDataConfig")
    if config is None:
        return []
    if not isinstance(config, list):
        fail("InputDataConfig must be a list of channels.")
    if len(config) > 20:
        fail(f"InputDataConfig has {len(config)} channels; at most 20 are allowed.")
    channels, seen = [], set()
    for i, entry in enumerate(config):
        where = f"InputDataConfig[{i}]"
        if not isinstance(entry, dict):
            fail(f"{where} must be a JSON object with ChannelName and DataSource.")
        name = _string(entry.get("ChannelName"), f"{where}.ChannelName")
        if not _CHANNEL_NAME.match(name):
            fail(f"{where}.ChannelName {name!r} may only use letters, digits, '.', '-' and '_' (at most 64).")
        _host_rule(check_channel_name, name, f"{where}.ChannelName")
        if name in seen:
            fail(f"{where}.ChannelName {name!r} is used by two channels.")
        seen.add(name)
        source = entry.get("DataSource")
        if not isinstance(source, dict):
            fail(f"{where}.DataSource is required (an object with S3DataSource).")
        if "S3DataSource" not in source:
            other = next(iter(source), None)
            if other:
                fail(f"{where}.DataSource.{other} is not supported in local mode; use S3DataSource.")
            fail(f"{where}.DataSource.S3DataSource is required.")
        s3 = source["S3DataSource"]
        if not isinstance(s3, dict):
            fail(f"{where}.DataSource.S3DataSource must be a JSON object with S3Uri.")
        uri_field = f"{where}.DataSource.S3DataSource.S3Uri"
        uri = normalize_location(s3.get("S3Uri"), uri_field, f"the S3 prefix (or local path) of channel {name!r}")
        _choice(s3.get("S3DataType"), f"{where}.DataSource.S3DataSource.S3DataType",
                ("S3Prefix", "ManifestFile", "AugmentedManifestFile"), "S3Prefix",
                unsupported=("ManifestFile", "AugmentedManifestFile"))
        if "S3DistributionType" in s3:
            fail(f"{where}.DataSource.S3DataSource.S3DistributionType is not a field of S3DataSource: the API's "
                  "name is S3DataDistributionType (S3DistributionType is only the container's "
                  "inputdataconfig.json name).")
        distribution = _choice(s3.get("S3DataDistributionType"),
                               f"{where}.DataSource.S3DataSource.S3DataDistributionType",
                               ("FullyReplicated", "ShardedByS3Key"), "FullyReplicated")
        mode = _choice(entry.get("InputMode"), f"{where}.InputMode", ("File", "Pipe", "FastFile"),
                       body["AlgorithmSpecification"].get("TrainingInputMode", "File"))
        wrapper = _choice(entry.get("RecordWrapperType"), f"{where}.RecordWrapperType", ("None", "RecordIO"), "None")
        _choice(entry.get("CompressionType"), f"{where}.CompressionType", ("None", "Gzip"), "None",
                unsupported=("Gzip",))
        content_type = _string(entry.get("ContentType"), f"{where}.ContentType", required=False)
        channels.append(Channel(name=name, uri=uri, content_type=content_type, distribution=distribution,
                                input_mode=mode, record_wrapper=wrapper, field=uri_field))
    return channels


def validate(body, framework: str | None = None) -> TrainingRequest:
    """Check a request as the API would; ``framework`` (from --framework) overrides the image's."""
    if not isinstance(body, dict):
        fail("the request must be a JSON object (a CreateTrainingJob request body).")
    unknown = sorted(set(body) - _USED - _ECHOED)
    if unknown:
        fail(f"{unknown[0]} is not a CreateTrainingJob field local mode knows "
              f"(known: {', '.join(sorted(_USED))}).")

    job_name = _string(body.get("TrainingJobName"), "TrainingJobName")
    if not _JOB_NAME.match(job_name):
        fail(f"TrainingJobName {job_name!r} must be 1-63 letters, digits and hyphens, "
              "starting with a letter or digit.")

    algo = _object(body, "AlgorithmSpecification")
    if algo.get("AlgorithmName"):
        fail("AlgorithmSpecification.AlgorithmName (a marketplace algorithm) is not supported in local mode; "
              "give AlgorithmSpecification.TrainingImage.")
    image = _string(algo.get("TrainingImage"), "AlgorithmSpecification.TrainingImage")
    if algo.get("TrainingInputMode") is None:
        fail("AlgorithmSpecification.TrainingInputMode is required (File).")
    _choice(algo["TrainingInputMode"], "AlgorithmSpecification.TrainingInputMode", ("File", "Pipe", "FastFile"),
            "File")
    if framework is None:
        framework = framework_from_image(image)
        if framework is None:
            fail(f"AlgorithmSpecification.TrainingImage {image!r} names no framework this toolkit runs: "
                  f"use an image URI containing {' or '.join(FRAMEWORKS)}, or pass --framework.")
    elif framework not in (*FRAMEWORKS, SCRIPT):
        fail(f"--framework {framework!r} is not a framework this toolkit runs "
              f"(one of: {', '.join((*FRAMEWORKS, SCRIPT))}).")

    hyperparameters = _object(body, "HyperParameters", required=False)
    if len(hyperparameters) > 100:
        fail(f"HyperParameters has {len(hyperparameters)} entries; at most 100 are allowed.")
    decoded = {}
    for key, value in hyperparameters.items():
        if len(key) > 256:
            fail(f"HyperParameters: the name {key[:40]!r}... is longer than 256 characters.")
        if not isinstance(value, str):
            if is_secret_name(key):  # the message quotes no secret
                fail(f"HyperParameters.{key} must be a string (the API takes strings; JSON-encode the value).")
            fail(f"HyperParameters.{key} must be a string, got {shown_value(key, json.dumps(value))} "
                 f"(the API takes strings; JSON-encode the value: {shown_value(key, json.dumps(json.dumps(value)))}).")
        if len(value) > 2500:
            fail(f"HyperParameters.{key} is longer than 2500 characters.")
        decoded[key] = _host_rule(_decoded_hyperparameter, key, value)
    _host_rule(check_names, hyperparameters, field="HyperParameters")

    channels = _channels(body)

    output = _object(body, "OutputDataConfig")
    output_path = normalize_location(output.get("S3OutputPath"), "OutputDataConfig.S3OutputPath",
                                     "where the model artifacts go (s3://bucket/prefix or a local directory)")
    output_path = output_path.rstrip("/") if uri_rules.is_s3(output_path) else output_path

    resources = _object(body, "ResourceConfig")
    instance_count = _int(resources.get("InstanceCount"), "ResourceConfig.InstanceCount", 1, 100)
    _string(resources.get("InstanceType"), "ResourceConfig.InstanceType")
    _int(resources.get("VolumeSizeInGB"), "ResourceConfig.VolumeSizeInGB", 1, 16384)

    stopping = _object(body, "StoppingCondition")
    max_run = _int(stopping.get("MaxRuntimeInSeconds"), "StoppingCondition.MaxRuntimeInSeconds", 1,
                   MAX_RUN_LIMIT, default=DEFAULT_MAX_RUN)

    role = _string(body.get("RoleArn"), "RoleArn", required=False)
    if role is not None and not _ROLE_ARN.match(role):
        fail(f"RoleArn {role!r} is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME).")

    environment = _object(body, "Environment", required=False)
    for key, value in environment.items():
        if not isinstance(value, str):
            fail(f"Environment.{key} must be a string, got {shown_value(key, json.dumps(value))}.")
        if not _ENV_NAME.match(key):
            fail(f"Environment: the name {key[:60]!r} is not a variable name (a letter or '_', then letters, "
                  "digits and '_'): rename it.")
        _host_rule(check_text, f"Environment.{key}", value)
    ours = sorted(key for key in environment if key.upper().startswith(TOOLKIT_ENV_PREFIX) and key not in USER_KNOBS)
    if ours:
        fail(f"Environment sets {', '.join(ours)}: {TOOLKIT_ENV_PREFIX}* variables configure the toolkit "
              "itself (base dir, ports, timeouts), which local mode sets for each host; remove "
              f"{'it' if len(ours) == 1 else 'them'} from the request.")

    from .checkpoints import read  # noqa: PLC0415 - it uses fail() from here
    return TrainingRequest(
        checkpoint=read(body, fail), body=body, job_name=job_name, image=image, framework=framework, hyperparameters=dict(hyperparameters),
        decoded=decoded, channels=channels, output_path=output_path, instance_count=instance_count, max_run=max_run,
        environment=dict(environment),
    )
