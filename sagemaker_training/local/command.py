"""``sagemaker-training local``: the command line of local mode.

``sagemaker-training local --request request.json`` takes a CreateTrainingJob
request body (request.py checks it) and runs it the way the platform
does (job.py), then prints the DescribeTrainingJob response as JSON on
stdout (logs go to stderr); exit code 0 only when the job Completed, 1 when
it did not, 2 for a bad request (nothing was started).

The flags form (``--framework --entry-point --source-dir ...``) builds the
request the way the SageMaker Python SDK's ``fit()`` does: it packs the code
into ``sourcedir.tar.gz``, uploads it, JSON-encodes the hyperparameters.

S3 is whatever the standard AWS variables point at (``AWS_ENDPOINT_URL_S3``
...); ``--embedded-s3`` runs an S3 server on loopback for the command's
lifetime instead (embedded_s3.py), and its endpoint is handed to the job and
its hosts explicitly.

A temporary work dir is removed at the end, unless an artifact did not reach
its destination: then it stays, and the log says where the artifacts are.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile

from ..archives import tarball
from ..storage import transfer
from ..storage.uri import is_prefix
from ..core import guarded_json
from ..errors import TrainingError
from .flags import request_from_flags
from .job import LocalJob
from .preflight import S3Clients, check, claim
from .progress import PROG, Log, Transfer
from .request import (
    ACCOUNT,
    DEFAULT_INSTANCE_TYPE,
    DEFAULT_MAX_RUN,
    DEFAULT_VOLUME_GB,
    FRAMEWORKS,
    SCRIPT,
    RequestError,
    fail,
    split_s3,
    validate,
)
from .embedded_s3 import EmbeddedS3, EmbeddedS3Unavailable
from .state import as_uri, now

EXIT_COMPLETED, EXIT_NOT_COMPLETED, EXIT_BAD_REQUEST = 0, 1, 2


def load_request(path: str) -> dict:
    """The request body in ``path`` ('-' = stdin), or a RequestError."""
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as f:
                text = f.read()
    except OSError as exc:
        fail(f"--request {path}: cannot read it ({exc.strerror}).")
    except UnicodeDecodeError as exc:
        fail(f"--request {path} is not UTF-8 text (byte {exc.object[exc.start:exc.start + 1]!r} at offset "
              f"{exc.start}): save the request as UTF-8 JSON.")
    try:
        body = guarded_json.loads(text)
    except ValueError as exc:
        fail(f"--request {path} is not valid JSON ({exc}).")
    except guarded_json.TooDeep:
        fail(f"--request {path} nests its JSON too deeply to read (more than {guarded_json.MAX_NESTING} "
             "levels): a CreateTrainingJob request is a few levels deep.")
    return body


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Run a whole training job on this machine, as the platform would: the hosts as process "
                    "trees, channels from S3 or local paths, artifacts packed to the output path. Give a "
                    "CreateTrainingJob request (--request) or the SDK-like flags (--entry-point ...). stdout ends "
                    "with the DescribeTrainingJob JSON; exit code 0 only when the job Completed, 2 for a bad "
                    "request.",
    )
    form = parser.add_argument_group("the job as a CreateTrainingJob request")
    form.add_argument("--request", metavar="FILE", help="request body in the API's JSON shape ('-' reads stdin)")

    flags = parser.add_argument_group("the job as the SDK's estimator and fit() arguments")
    flags.add_argument("--framework", choices=(*FRAMEWORKS, SCRIPT),
                       help="framework runner (default: the one TrainingImage names); 'script': no framework")
    flags.add_argument("--entry-point", metavar="FILE", help="the training script (relative to --source-dir)")
    flags.add_argument("--source-dir", metavar="DIR", help="directory packed into sourcedir.tar.gz")
    flags.add_argument("--hyperparameter", action="append", metavar="NAME=VALUE",
                       help="repeatable; VALUE is JSON when it parses (0.1, [1,2]) else a string")
    flags.add_argument("--training-steps", type=int, metavar="N")
    flags.add_argument("--evaluation-steps", type=int, metavar="N")
    flags.add_argument("--checkpoint-path", metavar="URI", help="s3:// URI or local path")
    flags.add_argument("--instance-count", type=int, default=1, metavar="N")
    flags.add_argument("--instance-type", default=DEFAULT_INSTANCE_TYPE)
    flags.add_argument("--volume-size", type=int, default=DEFAULT_VOLUME_GB, metavar="GB")
    flags.add_argument("--channel", action="append", metavar="NAME=URI",
                       help="repeatable; an s3:// prefix or a local path (a bare URI is the 'training' channel)")
    flags.add_argument("--output-path", metavar="URI",
                       help="s3:// prefix or local directory for the artifacts (default with --embedded-s3: "
                            f"s3://sagemaker-REGION-{ACCOUNT})")
    flags.add_argument("--code-location", metavar="URI",
                       help="where sourcedir.tar.gz goes: <URI>/<job>/source/ (default: the output path)")
    flags.add_argument("--max-run", type=int, default=DEFAULT_MAX_RUN, metavar="SECONDS")
    flags.add_argument("--job-name")
    flags.add_argument("--role", metavar="ARN", help="RoleArn (recorded; nothing is assumed)")

    run = parser.add_argument_group("how it runs")
    run.add_argument("--region", help="AWS region (default: $AWS_REGION, $AWS_DEFAULT_REGION, us-east-1)")
    run.add_argument("--embedded-s3", action="store_true",
                     help="run an in-memory S3 endpoint (moto) on loopback for the job's lifetime")
    run.add_argument("--upload-data", action="append", metavar="PATH=S3URI",
                     help="repeatable; copy a local file or directory to S3 first (like the SDK's upload_data), "
                          "e.g. to fill the embedded S3 with a channel's data")
    run.add_argument("--work-dir", metavar="DIR", help="the job's work dir (default: a temporary one)")
    run.add_argument("--keep", action="store_true", help="keep the temporary work dir")
    run.add_argument("--download-artifacts", metavar="DIR",
                     help="copy model.tar.gz and output.tar.gz to DIR/<job>/ at the end")
    run.add_argument("--prepare-only", action="store_true",
                     help="write the hosts' base dirs (config, channel data, code) into the work dir, print "
                          "their paths, run nothing (for docker/run-local.sh)")
    run.add_argument("--stop-grace", type=float, default=10.0, metavar="SECONDS",
                     help="after SIGTERM, how long the hosts get before SIGKILL (default 10)")
    return parser


_FLAG_NAMES = ("entry_point", "source_dir", "hyperparameter", "training_steps", "evaluation_steps",
               "checkpoint_path", "channel", "output_path", "code_location", "job_name", "role")


def _region(args) -> str:
    return transfer.region_name(args.region)


def _uploads(args) -> list[tuple[str, str]]:
    uploads = []
    for item in args.upload_data or []:
        at = item.lower().find("=s3://")  # the scheme in any case, as everywhere (storage/uri.py)
        path, uri = item[:max(at, 0)], item[at + 1:]
        if at <= 0:
            raise RequestError(f"--upload-data {item!r} must be PATH=s3://bucket/prefix.")
        path = os.path.abspath(os.path.expanduser(path))
        if not os.path.exists(path):
            raise RequestError(f"--upload-data {path}: no such file or directory.")
        split_s3(uri, f"--upload-data {item}")
        uploads.append((path, uri))
    return uploads


def _copy_all(log: Log, label: str, pairs: list, copy) -> None:
    """``copy(entry, target, progress)`` for every (transfer.Entry, target), under one progress display."""
    with Transfer(log, label, sum(entry.size for entry, _ in pairs), len(pairs)) as progress:
        for entry, target in pairs:
            copy(entry, target, progress)


def _upload_tree(log: Log, path: str, uri: str, region: str, client) -> None:
    entries = transfer.list_files(path)
    if not entries:
        raise RequestError(f"--upload-data {path}: nothing to upload.")
    if os.path.isfile(path):
        pairs = [(entries[0], transfer.join(uri, entries[0].relative) if is_prefix(uri) else uri)]
    else:
        pairs = [(entry, transfer.join(uri, entry.relative)) for entry in entries]
    _copy_all(log, f"upload {path} -> {uri}", pairs, lambda entry, target, progress: transfer.store(
        entry.source, target, region, what="--upload-data", client=client, progress=progress))


def _pack_source(source, work_dir: str) -> str:
    """sourcedir.tar.gz of the source dir (or of the entry point alone), as the SDK packs it."""
    archive = os.path.join(work_dir, "sourcedir.tar.gz")
    if source.source_dir:
        return tarball.pack_directory(source.source_dir, archive)
    single = os.path.join(work_dir, "single-file-source")
    os.makedirs(single, exist_ok=True)
    shutil.copy2(source.entry_path, os.path.join(single, source.entry_point))
    tarball.pack_directory(single, archive)
    shutil.rmtree(single)
    return archive


def _request(args, region: str):
    using_flags = [name for name in _FLAG_NAMES if getattr(args, name) not in (None, [], False)]
    if args.request and using_flags:
        raise RequestError(f"--request and --{using_flags[0].replace('_', '-')} do not go together: "
                           "give the job either as a request file or as flags.")
    if not args.request and not args.entry_point:
        raise RequestError("give the job as --request FILE, or as flags starting with --entry-point "
                           "(see --help).")
    if args.request:
        return validate(load_request(args.request), framework=args.framework), None
    default_output = f"s3://sagemaker-{region}-{ACCOUNT}" if args.embedded_s3 else None
    body, source = request_from_flags(args, region, default_output)
    return validate(body, framework=args.framework), source


def run_command(args, log: Log) -> int:
    if args.keep and args.work_dir:
        log("--work-dir is always kept; --keep changes nothing")
    region = _region(args)
    uploads = _uploads(args)
    created = now()
    request, source = _request(args, region)
    piped = [c.name for c in request.channels if c.input_mode == "Pipe"]
    if args.prepare_only and piped:
        raise RequestError(f"--prepare-only cannot deliver Pipe-mode channels ({', '.join(piped)}): their FIFOs are "
                           "fed by this command while the hosts run; run the job without --prepare-only, or give "
                           "those channels InputMode File.")

    with contextlib.ExitStack() as stack:
        s3_environ = None
        if args.embedded_s3:
            try:
                embedded = stack.enter_context(EmbeddedS3(region))
            except EmbeddedS3Unavailable as exc:
                raise RequestError(str(exc)) from None
            s3_environ = embedded.environ
            log(f"embedded S3 endpoint on {embedded.endpoint} (in memory, for this job only)")
        client = S3Clients(region, s3_environ)
        try:
            if args.embedded_s3:
                written = request.written_s3_uris() + [uri for _, uri in uploads]
                for bucket in sorted({split_s3(uri, "an S3 URI")[0] for uri in written}):
                    transfer.create_bucket(bucket, region, client=client())
            for path, uri in uploads:
                _upload_tree(log, path, uri, region, client())
        except TrainingError as exc:
            raise RequestError(exc.message) from None

        listings = check(request, region, client)
        work_dir = os.path.abspath(args.work_dir) if args.work_dir else \
            tempfile.mkdtemp(prefix=f"sagemaker-local-{request.job_name}-")
        temporary = not args.work_dir and not args.keep and not args.prepare_only
        try:
            stack.enter_context(claim(request, work_dir, region, s3_environ, client))
        except RequestError:
            if not args.work_dir:
                shutil.rmtree(work_dir, ignore_errors=True)
            raise
        job = LocalJob(request, work_dir, region, log, s3_environ=s3_environ, listings=listings,
                       grace=args.stop_grace, created=created)
        if temporary:
            stack.callback(_clean_up, job, log)
        if source is not None:  # the flags form: the code goes where the request says it is
            archive = _pack_source(source, work_dir)
            try:
                transfer.store(archive, source.upload_to, region, what="--code-location",
                              client=client() if transfer.is_s3(source.upload_to) else None)
            except TrainingError as exc:
                raise RequestError(exc.message) from None
            log(f"sourcedir.tar.gz -> {source.upload_to}")
            os.remove(archive)

        if args.prepare_only:
            job.prepare(localize_code=True)
            hosts = {h: job.cluster.base_dir(h) for h in job.cluster.hosts}
            print(json.dumps({"TrainingJobName": request.job_name, "WorkDir": job.work_dir,
                              "Framework": request.framework, "Hosts": hosts}, indent=2))
            log(f"prepared {len(hosts)} host dir(s) in {job.work_dir}; run them with docker/run-local.sh IMAGE "
                f"{job.work_dir}, or without Docker: SAGEMAKER_BASE_DIR={hosts['algo-1']} train")
            return EXIT_COMPLETED

        description = job.run()
        if args.download_artifacts:
            _download_artifacts(log, request, args.download_artifacts, region, client)
        elif args.embedded_s3 and job.state.model_location:
            log("the embedded S3 stops now and its objects with it: use --download-artifacts DIR to keep them")
        if args.work_dir or args.keep:
            log(f"work dir kept: {work_dir}")
        if job.state.model_location:
            log(f"model artifacts: {as_uri(job.state.model_location)}")
        ending = description["SecondaryStatusTransitions"][-1]["StatusMessage"]
        log(f"{request.job_name}: {description['TrainingJobStatus']} ({description['SecondaryStatus']}): {ending}")
        print(json.dumps(description, indent=2))
        sys.stdout.flush()
        return EXIT_COMPLETED if description["TrainingJobStatus"] == "Completed" else EXIT_NOT_COMPLETED


def _clean_up(job: LocalJob, log: Log) -> None:
    """Remove the temporary work dir, unless it holds artifacts that did not reach their destination."""
    if job.undelivered:
        log(f"work dir kept: {job.work_dir}: artifacts did not reach "
            f"{job.request.artifact_location('')}; they are in {', '.join(job.undelivered)}")
        return
    shutil.rmtree(job.work_dir, ignore_errors=True)


def _download_artifacts(log: Log, request, directory: str, region: str, client) -> None:
    target_dir = os.path.join(os.path.abspath(directory), request.job_name)
    for name in ("model.tar.gz", "output.tar.gz"):
        location = request.artifact_location(name)
        target = os.path.join(target_dir, name)
        try:
            entries = [e for e in transfer.list_files(location, region, client=client() if transfer.is_s3(location)
                                                     else None) if e.source == location]
            if not entries:
                continue
            _copy_all(log, f"{name} -> {target}", [(entries[0], target)], lambda entry, path, progress: transfer.fetch(
                entry, path, region, client=client() if transfer.is_s3(location) else None, progress=progress))
        except TrainingError as exc:  # a copy for convenience; the job's result stands
            log(f"could not copy {location}: {exc.message}")
            continue
        log(f"{name} copied to {target}")


def main(argv=None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    log = Log()
    try:
        return run_command(args, log)
    except RequestError as exc:
        sys.stderr.write(f"{PROG}: bad request: {exc}\n")
        return EXIT_BAD_REQUEST
