"""``sagemaker-training serve``: the command line.

Takes the state dir's lock first (statedir.Lock: a second server on it exits
at once, naming the holder), and its key pair (auth.load_or_create). Starts,
in order: the store (SQLite under ``--state-dir``; jobs that were
running when a previous server died become Failed, saying so), the S3 (the
embedded SeaweedFS with its data in the state dir, or ``--s3-endpoint``),
the buckets of ``--bucket``, the job queue and the HTTP server. Then it
prints, on stdout, the ``export`` lines a client needs, and ``ready
http://HOST:PORT`` (tests and scripts wait for that line). SIGTERM or SIGINT
stops the running jobs (they end Stopped), the S3 and the server.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from .. import params

PROG = "sagemaker-training serve"
SDK_CONFIG = "sdk-config.yaml"


def default_state_dir() -> str:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "sagemaker-training", "serve")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="A local control plane for the SageMaker Python SDK, boto3 and the AWS CLI: SageMaker "
                    "training jobs (each run the way `sagemaker-training local` runs it), their CloudWatch "
                    "logs, STS and S3 on one loopback port. Point a client at it with AWS_ENDPOINT_URL.")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1: loopback only; any other needs --allow-remote)")
    parser.add_argument("--allow-remote", action="store_true",
                        help="allow a --host that is not loopback: whoever reaches the port and holds the printed "
                             "key runs code as this user")
    parser.add_argument("--port", type=int, default=0, help="port (default 0: a free one, printed at start)")
    parser.add_argument("--state-dir", default=None,
                        help=f"jobs, logs and the embedded S3's objects (default {default_state_dir()})")
    parser.add_argument("--max-running", type=int, default=max(1, (os.cpu_count() or 2) // 2), metavar="N",
                        help="jobs that run at once; the others wait, in order (default: half the CPUs)")
    parser.add_argument("--region", default=None,
                        help="region of requests that do not name one (default $AWS_REGION, $AWS_DEFAULT_REGION, us-east-1)")
    parser.add_argument("--s3-endpoint", metavar="URL",
                        help="use this S3 endpoint (for clients and jobs) instead of the embedded one")
    parser.add_argument("--bucket", action="append", default=[], metavar="NAME",
                        help="repeatable: create this bucket in the embedded S3 (the SDKs never create buckets)")
    parser.add_argument("--stop-grace", type=float, default=10.0, metavar="SECONDS",
                        help="after SIGTERM (StopTrainingJob), how long the hosts get before SIGKILL (default 10)")
    parser.add_argument("--max-connections", type=int, default=256, metavar="N",
                        help="connections served at once; one more gets a 503 that clients retry (default 256)")
    parser.add_argument("--read-timeout", type=float, default=60.0, metavar="SECONDS",
                        help="a connection silent this long, between requests or inside one, is closed (default 60)")
    parser.add_argument("--log-retention-days", type=int, default=None, metavar="DAYS",
                        help="keep jobs' log events this many days (CloudWatch's PutRetentionPolicy values: 1, 3, "
                             "5, 7, 14, 30, ...); without it, PutRetentionPolicy's setting, else forever")
    parser.add_argument("--verbose", action="store_true", help="a line on stderr per request (no headers)")
    return parser


def _exports(url: str, region: str, state_dir: str, s3_endpoint: str | None, key: tuple[str, str]) -> list[str]:
    config = os.path.join(state_dir, SDK_CONFIG)
    with open(config, "w", encoding="utf-8") as f:  # SDK v2: no telemetry call to the internet after fit()
        f.write("SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n      TelemetryOptOut: true\n")
    lines = [f"export AWS_ENDPOINT_URL={url}", f"export AWS_DEFAULT_REGION={region}",
             f"export AWS_ACCESS_KEY_ID={key[0]}", f"export AWS_SECRET_ACCESS_KEY={key[1]}",
             f"export SAGEMAKER_USER_CONFIG_OVERRIDE={config}"]
    if s3_endpoint:
        lines.append(f"export AWS_ENDPOINT_URL_S3={s3_endpoint}")
    return lines


def _job_s3_environ(endpoint: str, embedded: bool) -> dict:
    """What the jobs' S3 clients and hosts get: the S3 endpoint, and for the
    embedded one throw-away credentials (nothing pointing elsewhere)."""
    environ = {"AWS_ENDPOINT_URL_S3": endpoint, "AWS_ENDPOINT_URL": None, "S3_ENDPOINT_URL": None}
    if embedded:
        environ.update(AWS_ACCESS_KEY_ID="serve", AWS_SECRET_ACCESS_KEY="serve", AWS_SESSION_TOKEN=None,
                       AWS_SECURITY_TOKEN=None, AWS_PROFILE=None)
    return environ


def _bounds_problem(args, retention_days) -> str | None:
    if args.max_connections < 1:
        return f"--max-connections must be at least 1, got {args.max_connections}"
    if not 0 < args.read_timeout <= 3600:
        return f"--read-timeout must be more than 0 and at most 3600 seconds, got {args.read_timeout:g}"
    if args.log_retention_days is not None and args.log_retention_days not in retention_days:
        return (f"--log-retention-days must be one of CloudWatch's values ({', '.join(map(str, retention_days))}), "
                f"got {args.log_retention_days}")
    return None


def serve(args) -> int:
    from . import auth, statedir  # noqa: PLC0415
    region = params.region_from(os.environ, args.region)
    state_dir = os.path.abspath(os.path.expanduser(args.state_dir or default_state_dir()))
    if args.max_running < 1:
        sys.stderr.write(f"{PROG}: --max-running must be at least 1, got {args.max_running}\n")
        return 2
    from . import cloudwatch  # noqa: PLC0415
    problem = _bounds_problem(args, cloudwatch.RETENTION_DAYS)
    if problem:
        sys.stderr.write(f"{PROG}: {problem}\n")
        return 2

    def log(message: str) -> None:
        sys.stderr.write(f"{PROG}: {message}\n")
        sys.stderr.flush()

    if not auth.is_loopback(args.host):
        if not args.allow_remote:
            log(f"--host {args.host} is not a loopback address: whoever reaches the port and holds the key runs "
                "code as this user. Add --allow-remote to serve it anyway, or leave --host at 127.0.0.1.")
            return 2
        log(f"WARNING: serving on {args.host} (--allow-remote): anyone who reaches this port and holds the key in "
            f"{os.path.join(state_dir, auth.CREDENTIALS_FILE)} runs code as {_user()} on this machine")
    try:
        lock = statedir.Lock(statedir.private_dir(state_dir)).acquire()
    except statedir.Busy as exc:
        log(str(exc))
        return 2
    try:
        return _serve(args, state_dir, region, log)
    finally:
        lock.release()


def _user() -> str:
    import getpass  # noqa: PLC0415

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def _serve(args, state_dir: str, region: str, log) -> int:
    """The server, on a state dir whose lock this process holds."""
    from . import auth, cloudwatch, routes, s3, sagemaker  # noqa: PLC0415 - botocore and sqlite only when serving
    from .scheduler import Scheduler  # noqa: PLC0415
    from .store import Store  # noqa: PLC0415
    from .tuning.operations import TuningOperations  # noqa: PLC0415
    from .tuning.tuner import Tuner  # noqa: PLC0415

    key = auth.load_or_create(state_dir)
    store = Store(state_dir)
    if args.log_retention_days is not None:
        store.set_retention(args.log_retention_days)
    store.expire_events()

    embedded = None
    if args.s3_endpoint:
        endpoint = args.s3_endpoint
    else:
        embedded = s3.EmbeddedS3(state_dir, log)
        try:
            endpoint = embedded.start()
        except s3.S3Unavailable as exc:
            log(str(exc))
            return 2
    try:
        if args.bucket:
            try:
                s3.make_buckets(endpoint, region, args.bucket, embedded=embedded is not None)
            except s3.S3Unavailable as exc:
                log(str(exc))
                return 2
        scheduler = Scheduler(store, state_dir, args.max_running, args.stop_grace,
                              _job_s3_environ(endpoint, embedded is not None), log)
        orphans = scheduler.recover()
        if orphans:
            log(f"{len(orphans)} job(s) were running when the server stopped and are now Failed: "
                f"{', '.join(orphans)}")
        tuner = Tuner(store, scheduler, log)
        app = routes.App(sagemaker.SageMaker(store, scheduler, TuningOperations(store, tuner)), cloudwatch.Logs(store),
                         endpoint, region, auth.Verifier(*key, region), verbose=args.verbose,
                         s3_embedded=embedded is not None, on_s3_delete=embedded.vacuum if embedded else None)
        try:
            server = routes.make_server(args.host, args.port, app, max_connections=args.max_connections,
                                        read_timeout=args.read_timeout)
        except OSError as exc:
            log(f"cannot listen on {args.host}:{args.port}: {exc.strerror}; choose another --port")
            return 2
        host, port = server.server_address[:2]
        if host in ("0.0.0.0", "::"):  # every interface: this machine's clients reach it on loopback
            host = "127.0.0.1" if host == "0.0.0.0" else "[::1]"
        url = f"http://{host}:{port}"
        scheduler.start()
        tuner.start()
        for line in _exports(url, region, state_dir, args.s3_endpoint, key):
            print(line)
        print(f"ready {url}", flush=True)
        log(f"state in {state_dir}; S3 {'embedded at ' + endpoint if embedded else 'at ' + endpoint}; "
            f"at most {args.max_running} job(s) at once")
        def on_signal(signum, frame):
            threading.Thread(target=server.shutdown, daemon=True).start()

        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, on_signal)
        server.serve_forever(poll_interval=0.5)
        log("stopping: the running jobs are stopped")
        tuner.shutdown()
        scheduler.shutdown(timeout=args.stop_grace + 30)
        server.server_close()
    finally:
        if embedded:
            embedded.stop()
        store.close()
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    return serve(args)
