"""Local mode's flags form: the job as the SageMaker Python SDK's estimator and ``fit()`` send it.

``sagemaker-training local --framework tensorflow --entry-point iris.py
--source-dir src --training-steps 1000 --channel s3://bucket/iris ...``
becomes the CreateTrainingJob body the SDK would send (every hyperparameter
JSON-encoded, the toolkit's ``sagemaker_*`` ones added, the code to be packed
into ``<code location>/<job>/source/sourcedir.tar.gz``), which then goes
through request.validate like any request.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

from .. import params
from ..core.hyperparameters import decode_value
from ..storage.uri import join as join_location
from .request import FRAMEWORKS, SCRIPT, fail, normalize_location
from .state import as_uri


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
                fail(f"{flag} {item!r} must be NAME=VALUE.")
            name, value = default_name, item
        if not name:
            fail(f"{flag} {item!r} has an empty name.")
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
        fail("--framework is required with --entry-point (tensorflow, mxnet or script).")
    if framework not in (*FRAMEWORKS, SCRIPT):
        fail(f"--framework {framework!r} is not a framework this toolkit runs "
              f"(one of: {', '.join((*FRAMEWORKS, SCRIPT))}).")

    if args.source_dir:
        source_dir = os.path.abspath(os.path.expanduser(args.source_dir))
        if not os.path.isdir(source_dir):
            fail(f"--source-dir {args.source_dir}: no such directory.")
        entry_path = os.path.join(source_dir, args.entry_point)
        if not os.path.isfile(entry_path):
            fail(f"--entry-point {args.entry_point}: no such file in --source-dir {args.source_dir} "
                  "(give it relative to the source dir).")
        entry_point = os.path.relpath(entry_path, source_dir)
    else:
        source_dir = None
        entry_path = os.path.abspath(os.path.expanduser(args.entry_point))
        if not os.path.isfile(entry_path):
            fail(f"--entry-point {args.entry_point}: no such file.")
        entry_point = os.path.basename(entry_path)

    job_name = args.job_name or default_job_name(framework)
    output = args.output_path or default_output
    if not output:
        fail("--output-path is required (s3://bucket/prefix or a local directory) unless --embedded-s3 is on.")
    output = normalize_location(output, "--output-path", "where the model artifacts go")
    code_base = normalize_location(args.code_location, "--code-location", "") if args.code_location else output
    code_uri = join_location(code_base, job_name, "source", "sourcedir.tar.gz")

    hyperparameters: dict = {}
    for name, value in parse_pairs(args.hyperparameter, "--hyperparameter"):
        hyperparameters[name] = decode_value(name, value)
    for name in ("training_steps", "evaluation_steps", params.CHECKPOINT_PATH):
        value = getattr(args, name)
        if value is not None:
            hyperparameters[name] = value
    hyperparameters.update({
        params.PROGRAM: entry_point,
        params.SUBMIT_DIRECTORY: code_uri,
        params.REGION: region,
        params.JOB_NAME: job_name,
        params.LOG_LEVEL: 20,
    })
    encoded = {k: json.dumps(v) for k, v in hyperparameters.items()}

    channels = []
    for name, uri in parse_pairs(args.channel, "--channel", default_name="training"):
        location = normalize_location(uri, f"--channel {name}", "an s3:// prefix or a local path")
        channels.append({
            "ChannelName": name,
            "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": as_uri(location),
                "S3DataDistributionType": "FullyReplicated",
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
        "OutputDataConfig": {"S3OutputPath": as_uri(output)},
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
