"""Local mode's input: a CreateTrainingJob request, read and checked.

``sagemaker-training local`` takes the request body in the API's own JSON
shape (what ``boto3.client("sagemaker").create_training_job(**body)`` takes,
and what DescribeTrainingJob echoes back). :func:`validate` checks it the way
the API does, before anything starts, and raises :class:`RequestError` with
one line that names the field (``ResourceConfig.InstanceCount must be at
least 1, got 0``). The flags form (:func:`request_from_flags`) builds the same
body, the way the SageMaker Python SDK's ``fit()`` does.

Local mode extends the API in two places only: a channel's ``S3Uri`` and
``OutputDataConfig.S3OutputPath`` may also be a local path or ``file://``
URI, so that a job can run with no S3 at all.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field

FRAMEWORKS = ("tensorflow", "mxnet")
SCRIPT = "script"  # --framework script: the plain script runner, no framework
DEFAULT_MAX_RUN = 24 * 60 * 60  # the API's default MaxRuntimeInSeconds
DEFAULT_INSTANCE_TYPE = "ml.m5.large"
DEFAULT_VOLUME_GB = 30
ACCOUNT = "000000000000"  # the fake account of ARNs and default buckets

_JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_CHANNEL_NAME = re.compile(r"^[A-Za-z0-9.\-_]{1,64}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$")

# Top-level request fields the API knows. Local mode acts on the first group,
# echoes the second (they change nothing on one machine), refuses the rest.
_USED = {
    "TrainingJobName", "AlgorithmSpecification", "HyperParameters", "InputDataConfig", "OutputDataConfig",
    "ResourceConfig", "StoppingCondition", "RoleArn", "Environment",
}
_ECHOED = {
    "Tags", "VpcConfig", "EnableNetworkIsolation", "EnableInterContainerTrafficEncryption",
    "EnableManagedSpotTraining", "DebugHookConfig", "DebugRuleConfigurations", "ProfilerConfig",
    "ProfilerRuleConfigurations", "ExperimentConfig", "TensorBoardOutputConfig", "RetryStrategy",
}


class RequestError(Exception):
    """A bad request: one line naming the field. Nothing has been started."""

    exit_code = 2


def _fail(message: str):
    raise RequestError(" ".join(message.split()))


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
        return self.uri.startswith("s3://")

    def data_config(self) -> dict:
        """This channel's entry in inputdataconfig.json."""
        config = {
            "TrainingInputMode": self.input_mode,
            "S3DistributionType": self.distribution,
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

    @property
    def hosts(self) -> list[str]:
        return [f"algo-{i}" for i in range(1, self.instance_count + 1)]

    def artifact_location(self, name: str) -> str:
        """``<S3OutputPath>/<job>/output/<name>`` (an S3 URI or a local path)."""
        return join_location(self.output_path, self.job_name, "output", name)

    def s3_uris(self) -> list[str]:
        """Every s3:// URI the job reads or writes (to find the buckets)."""
        uris = [c.uri for c in self.channels if c.is_s3]
        if self.output_path.startswith("s3://"):
            uris.append(self.output_path)
        for key in ("sagemaker_submit_directory", "checkpoint_path"):
            value = decode_hyperparameter(self.hyperparameters.get(key))
            if isinstance(value, str) and value.startswith("s3://"):
                uris.append(value)
        return uris

    def written_s3_uris(self) -> list[str]:
        """The s3:// URIs the job writes to: output path, checkpoints."""
        channel_uris = {c.uri for c in self.channels}
        return [u for u in self.s3_uris() if u not in channel_uris]


# ---------------------------------------------------------------------------
# Locations


def join_location(base: str, *parts: str) -> str:
    if base.startswith("s3://"):
        return "/".join([base.rstrip("/"), *parts])
    return os.path.join(base, *parts)


def split_s3(uri: str, field_name: str) -> tuple[str, str]:
    """(bucket, key) of an s3:// URI, or a RequestError naming the field."""
    rest = uri[len("s3://"):]
    bucket, _, key = rest.partition("/")
    if not _BUCKET.match(bucket):
        _fail(f"{field_name}: {uri!r} does not name a valid S3 bucket (s3://bucket/prefix).")
    return bucket, key


def normalize_location(value, field_name: str, what: str) -> str:
    """An s3:// URI kept as it is, or a local path / file:// URI made absolute."""
    if not isinstance(value, str) or not value.strip():
        _fail(f"{field_name} is required: {what}.")
    value = value.strip()
    if value.startswith("s3://"):
        split_s3(value, field_name)
        return value
    if value.startswith("file://"):
        value = value[len("file://"):]
    elif re.match(r"^[a-zA-Z][a-zA-Z0-9+.\-]*://", value):
        _fail(f"{field_name}: {value!r} is neither an s3:// URI nor a local path.")
    return os.path.abspath(os.path.expanduser(value))


# ---------------------------------------------------------------------------
# Hyperparameters


def decode_hyperparameter(value):
    """A request's hyperparameter string as the toolkit reads it (JSON when it parses)."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def parse_cli_value(text: str):
    """A value typed on the command line: JSON when it parses (``0.1``, ``[1, 2]``), else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


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
            _fail(f"{name} is required.")
        return {}
    if not isinstance(value, dict):
        _fail(f"{name} must be a JSON object, got {type(value).__name__}.")
    return value


def _int(value, field_name: str, minimum: int, maximum: int | None = None, default=None) -> int:
    if value is None and default is not None:
        return default
    if value is None:
        _fail(f"{field_name} is required.")
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(f"{field_name} must be an integer, got {json.dumps(value)}.")
    if value < minimum:
        _fail(f"{field_name} must be at least {minimum}, got {value}.")
    if maximum is not None and value > maximum:
        _fail(f"{field_name} must be at most {maximum}, got {value}.")
    return value


def _string(value, field_name: str, required: bool = True) -> str | None:
    if value is None or value == "":
        if required:
            _fail(f"{field_name} is required.")
        return None
    if not isinstance(value, str):
        _fail(f"{field_name} must be a string, got {json.dumps(value)}.")
    return value


def _choice(value, field_name: str, choices, default: str, unsupported=()) -> str:
    if value is None:
        return default
    if value in unsupported:
        _fail(f"{field_name}={value} is not supported in local mode; use {default}.")
    if value not in choices:
        _fail(f"{field_name} must be one of {', '.join(choices)}, got {json.dumps(value)}.")
    return value


def _channels(body: dict) -> list[Channel]:
    config = body.get("InputDataConfig")
    if config is None:
        return []
    if not isinstance(config, list):
        _fail("InputDataConfig must be a list of channels.")
    if len(config) > 20:
        _fail(f"InputDataConfig has {len(config)} channels; at most 20 are allowed.")
    channels, seen = [], set()
    for i, entry in enumerate(config):
        where = f"InputDataConfig[{i}]"
        if not isinstance(entry, dict):
            _fail(f"{where} must be a JSON object with ChannelName and DataSource.")
        name = _string(entry.get("ChannelName"), f"{where}.ChannelName")
        if not _CHANNEL_NAME.match(name):
            _fail(f"{where}.ChannelName {name!r} may only use letters, digits, '.', '-' and '_' (at most 64).")
        if name in seen:
            _fail(f"{where}.ChannelName {name!r} is used by two channels.")
        seen.add(name)
        source = entry.get("DataSource")
        if not isinstance(source, dict):
            _fail(f"{where}.DataSource is required (an object with S3DataSource).")
        if "S3DataSource" not in source:
            other = next(iter(source), None)
            if other:
                _fail(f"{where}.DataSource.{other} is not supported in local mode; use S3DataSource.")
            _fail(f"{where}.DataSource.S3DataSource is required.")
        s3 = source["S3DataSource"]
        if not isinstance(s3, dict):
            _fail(f"{where}.DataSource.S3DataSource must be a JSON object with S3Uri.")
        uri_field = f"{where}.DataSource.S3DataSource.S3Uri"
        uri = normalize_location(s3.get("S3Uri"), uri_field, f"the S3 prefix (or local path) of channel {name!r}")
        _choice(s3.get("S3DataType"), f"{where}.DataSource.S3DataSource.S3DataType",
                ("S3Prefix", "ManifestFile", "AugmentedManifestFile"), "S3Prefix",
                unsupported=("ManifestFile", "AugmentedManifestFile"))
        distribution = _choice(s3.get("S3DistributionType"), f"{where}.DataSource.S3DataSource.S3DistributionType",
                               ("FullyReplicated", "ShardedByS3Key"), "FullyReplicated")
        mode = _choice(entry.get("InputMode"), f"{where}.InputMode", ("File", "Pipe", "FastFile"),
                       body["AlgorithmSpecification"].get("TrainingInputMode", "File"), unsupported=("Pipe",))
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
        _fail("the request must be a JSON object (a CreateTrainingJob request body).")
    unknown = sorted(set(body) - _USED - _ECHOED)
    if unknown:
        _fail(f"{unknown[0]} is not a CreateTrainingJob field local mode knows "
              f"(known: {', '.join(sorted(_USED))}).")

    job_name = _string(body.get("TrainingJobName"), "TrainingJobName")
    if not _JOB_NAME.match(job_name):
        _fail(f"TrainingJobName {job_name!r} must be 1-63 letters, digits and hyphens, "
              "starting with a letter or digit.")

    algo = _object(body, "AlgorithmSpecification")
    if algo.get("AlgorithmName"):
        _fail("AlgorithmSpecification.AlgorithmName (a marketplace algorithm) is not supported in local mode; "
              "give AlgorithmSpecification.TrainingImage.")
    image = _string(algo.get("TrainingImage"), "AlgorithmSpecification.TrainingImage")
    if algo.get("TrainingInputMode") is None:
        _fail("AlgorithmSpecification.TrainingInputMode is required (File).")
    _choice(algo["TrainingInputMode"], "AlgorithmSpecification.TrainingInputMode", ("File", "Pipe", "FastFile"),
            "File", unsupported=("Pipe",))
    if framework is None:
        framework = framework_from_image(image)
        if framework is None:
            _fail(f"AlgorithmSpecification.TrainingImage {image!r} names no framework this toolkit runs: "
                  f"use an image URI containing {' or '.join(FRAMEWORKS)}, or pass --framework.")
    elif framework not in (*FRAMEWORKS, SCRIPT):
        _fail(f"--framework {framework!r} is not a framework this toolkit runs "
              f"(one of: {', '.join((*FRAMEWORKS, SCRIPT))}).")

    hyperparameters = _object(body, "HyperParameters", required=False)
    if len(hyperparameters) > 100:
        _fail(f"HyperParameters has {len(hyperparameters)} entries; at most 100 are allowed.")
    for key, value in hyperparameters.items():
        if len(key) > 256:
            _fail(f"HyperParameters: the name {key[:40]!r}... is longer than 256 characters.")
        if not isinstance(value, str):
            _fail(f"HyperParameters.{key} must be a string, got {json.dumps(value)} "
                  f"(the API takes strings; JSON-encode the value: {json.dumps(json.dumps(value))}).")
        if len(value) > 2500:
            _fail(f"HyperParameters.{key} is longer than 2500 characters.")

    channels = _channels(body)

    output = _object(body, "OutputDataConfig")
    output_path = normalize_location(output.get("S3OutputPath"), "OutputDataConfig.S3OutputPath",
                                     "where the model artifacts go (s3://bucket/prefix or a local directory)")
    output_path = output_path.rstrip("/") if output_path.startswith("s3://") else output_path

    resources = _object(body, "ResourceConfig")
    instance_count = _int(resources.get("InstanceCount"), "ResourceConfig.InstanceCount", 1, 100)
    _string(resources.get("InstanceType"), "ResourceConfig.InstanceType")
    _int(resources.get("VolumeSizeInGB"), "ResourceConfig.VolumeSizeInGB", 1, 16384)

    stopping = _object(body, "StoppingCondition")
    max_run = _int(stopping.get("MaxRuntimeInSeconds"), "StoppingCondition.MaxRuntimeInSeconds", 1,
                   default=DEFAULT_MAX_RUN)

    role = _string(body.get("RoleArn"), "RoleArn", required=False)
    if role is not None and not _ROLE_ARN.match(role):
        _fail(f"RoleArn {role!r} is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME).")

    environment = _object(body, "Environment", required=False)
    for key, value in environment.items():
        if not isinstance(value, str):
            _fail(f"Environment.{key} must be a string, got {json.dumps(value)}.")

    return TrainingRequest(
        body=body, job_name=job_name, image=image, framework=framework, hyperparameters=dict(hyperparameters),
        channels=channels, output_path=output_path, instance_count=instance_count, max_run=max_run,
        environment=dict(environment),
    )


def load_request(path: str) -> dict:
    """The request body in ``path`` ('-' = stdin), or a RequestError."""
    import sys

    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as f:
                text = f.read()
    except OSError as exc:
        _fail(f"--request {path}: cannot read it ({exc.strerror}).")
    try:
        body = json.loads(text)
    except ValueError as exc:
        _fail(f"--request {path} is not valid JSON ({exc}).")
    return body


# ---------------------------------------------------------------------------
# The flags form: what the SDK's estimator + fit() send


def default_job_name(framework: str) -> str:
    """``sagemaker-tensorflow-2024-05-01-12-00-00-123``, as the SDK names jobs."""
    now = time.time()
    stamp = time.strftime("%Y-%m-%d-%H-%M-%S", time.gmtime(now))
    return f"sagemaker-{framework}-{stamp}-{int(now * 1000) % 1000:03d}"


def image_for(framework: str) -> str:
    """The image docker/build.sh tags for a framework (CPU)."""
    return f"sagemaker-training-{framework}:cpu"


def parse_pairs(values, flag: str, default_name: str | None = None) -> list[tuple[str, str]]:
    pairs = []
    for item in values or []:
        name, sep, value = item.partition("=")
        if not sep or "://" in name or os.sep in name:
            if default_name is None:
                _fail(f"{flag} {item!r} must be NAME=VALUE.")
            name, value = default_name, item
        if not name:
            _fail(f"{flag} {item!r} has an empty name.")
        pairs.append((name, value))
    return pairs


@dataclass
class SourceCode:
    """The user code the flags form packs: a directory (or one file) and the entry point in it."""

    source_dir: str | None  # None: only the entry point file is packed
    entry_point: str  # path of the entry point relative to source_dir (or its file name)
    entry_path: str  # absolute path of the entry point file
    upload_to: str  # s3:// URI or local path of sourcedir.tar.gz


def request_from_flags(args, region: str, default_output: str | None) -> tuple[dict, SourceCode]:
    """(request body, code to pack and upload), as the SDK's estimator and fit() build them."""
    framework = args.framework
    if not framework:
        _fail("--framework is required with --entry-point (tensorflow, mxnet or script).")
    if framework not in (*FRAMEWORKS, SCRIPT):
        _fail(f"--framework {framework!r} is not a framework this toolkit runs "
              f"(one of: {', '.join((*FRAMEWORKS, SCRIPT))}).")

    if args.source_dir:
        source_dir = os.path.abspath(os.path.expanduser(args.source_dir))
        if not os.path.isdir(source_dir):
            _fail(f"--source-dir {args.source_dir}: no such directory.")
        entry_path = os.path.join(source_dir, args.entry_point)
        if not os.path.isfile(entry_path):
            _fail(f"--entry-point {args.entry_point}: no such file in --source-dir {args.source_dir} "
                  "(give it relative to the source dir).")
        entry_point = os.path.relpath(entry_path, source_dir)
    else:
        source_dir = None
        entry_path = os.path.abspath(os.path.expanduser(args.entry_point))
        if not os.path.isfile(entry_path):
            _fail(f"--entry-point {args.entry_point}: no such file.")
        entry_point = os.path.basename(entry_path)

    job_name = args.job_name or default_job_name(framework)
    output = args.output_path or default_output
    if not output:
        _fail("--output-path is required (s3://bucket/prefix or a local directory) unless --embedded-s3 is on.")
    output = normalize_location(output, "--output-path", "where the model artifacts go")
    code_base = normalize_location(args.code_location, "--code-location", "") if args.code_location else output
    code_uri = join_location(code_base, job_name, "source", "sourcedir.tar.gz")

    hyperparameters: dict = {}
    for name, value in parse_pairs(args.hyperparameter, "--hyperparameter"):
        hyperparameters[name] = parse_cli_value(value)
    for name in ("training_steps", "evaluation_steps", "checkpoint_path"):
        value = getattr(args, name)
        if value is not None:
            hyperparameters[name] = value
    hyperparameters.update({
        "sagemaker_program": entry_point,
        "sagemaker_submit_directory": code_uri,
        "sagemaker_region": region,
        "sagemaker_job_name": job_name,
        "sagemaker_container_log_level": 20,
    })
    encoded = {k: json.dumps(v) for k, v in hyperparameters.items()}

    channels = []
    for name, uri in parse_pairs(args.channel, "--channel", default_name="training"):
        location = normalize_location(uri, f"--channel {name}", "an s3:// prefix or a local path")
        channels.append({
            "ChannelName": name,
            "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": location if location.startswith("s3://") else f"file://{location}",
                "S3DistributionType": "FullyReplicated",
            }},
        })

    body = {
        "TrainingJobName": job_name,
        "AlgorithmSpecification": {
            "TrainingImage": image_for(framework),
            "TrainingInputMode": "File",
        },
        "HyperParameters": encoded,
        "InputDataConfig": channels,
        "OutputDataConfig": {"S3OutputPath": output if output.startswith("s3://") else f"file://{output}"},
        "ResourceConfig": {
            "InstanceCount": args.instance_count,
            "InstanceType": args.instance_type,
            "VolumeSizeInGB": args.volume_size,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": args.max_run},
    }
    if args.role:
        body["RoleArn"] = args.role
    if not channels:
        del body["InputDataConfig"]
    return body, SourceCode(source_dir=source_dir, entry_point=entry_point, entry_path=entry_path,
                            upload_to=code_uri)
