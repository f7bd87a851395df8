"""storage against a real S3 endpoint (moto's server over HTTP, conftest's
``s3_endpoint``), and through a real HTTP proxy that fails on purpose, so
that retries, give-ups and error translation run exactly as they would
against S3."""

from __future__ import annotations

import http.client
import http.server
import io
import os
import socket
import subprocess
import sys
import tarfile
import threading
import time

import pytest

from sagemaker_training import storage
from sagemaker_training.errors import ClientError, PlatformError

CODE = {"train.py": b"print('training')\n", "lib/util.py": b"X = 1\n"}


def _tarball(files: dict) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _tree(root) -> dict:
    found = {}
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, root)] = f.read()
    return found


@pytest.fixture
def code_dir(tmp_path):
    """An existing code dir with the previous job's code in it."""
    path = tmp_path / "ml" / "code"
    path.mkdir(parents=True)
    (path / "stale.py").write_text("old")
    return path


def test_importing_storage_does_not_import_boto3():
    code = "import sagemaker_training.storage, sys; assert 'boto3' not in sys.modules and 'botocore' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --------------------------------------------------------------------------
# fetch_submit_dir: every place the code can be


def test_fetch_from_s3_tarball_replaces_the_code_dir(s3, s3_bucket, code_dir):
    bucket = s3_bucket()
    s3.put_object(Bucket=bucket, Key="job-1/source/sourcedir.tar.gz", Body=_tarball(CODE))
    storage.fetch_submit_dir(f"s3://{bucket}/job-1/source/sourcedir.tar.gz", str(code_dir))
    assert _tree(code_dir) == CODE
    assert sorted(os.listdir(code_dir.parent)) == ["code"]  # no download or staging left beside it


def test_fetch_from_s3_folder(s3, s3_bucket, code_dir):
    bucket = s3_bucket()
    for name, data in CODE.items():
        s3.put_object(Bucket=bucket, Key=f"src/{name}", Body=data)
    s3.put_object(Bucket=bucket, Key="src-other/not-this.py", Body=b"")
    storage.fetch_submit_dir(f"s3://{bucket}/src/", str(code_dir))
    assert _tree(code_dir) == CODE


def _local_sources(tmp_path):
    src = tmp_path / "src"
    (src / "lib").mkdir(parents=True)
    for name, data in CODE.items():
        (src / name).write_bytes(data)
    os.symlink("lib/util.py", src / "alias.py")
    archive = tmp_path / "sourcedir.tar.gz"
    archive.write_bytes(_tarball(CODE))
    return src, archive


@pytest.mark.parametrize("form", ["path", "file-uri"])
def test_fetch_from_local_tarball(tmp_path, code_dir, form):
    _, archive = _local_sources(tmp_path)
    storage.fetch_submit_dir(f"file://{archive}" if form == "file-uri" else str(archive), str(code_dir))
    assert _tree(code_dir) == CODE


@pytest.mark.parametrize("form", ["path", "file-uri"])
def test_fetch_from_local_directory_keeps_links(tmp_path, code_dir, form):
    src, _ = _local_sources(tmp_path)
    storage.fetch_submit_dir(f"file://{src}" if form == "file-uri" else str(src), str(code_dir))
    assert os.readlink(code_dir / "alias.py") == "lib/util.py"
    assert _tree(code_dir) == {**CODE, "alias.py": CODE["lib/util.py"]}
    assert _tree(src) == {**CODE, "alias.py": CODE["lib/util.py"]}  # the source is untouched


def test_fetch_when_the_code_dir_is_inside_the_source(tmp_path):
    src, _ = _local_sources(tmp_path)
    storage.fetch_submit_dir(str(src), str(src / "code"))
    assert _tree(src / "code") == {**CODE, "alias.py": CODE["lib/util.py"]}


def test_fetch_when_the_source_is_the_code_dir(tmp_path):
    src, _ = _local_sources(tmp_path)
    storage.fetch_submit_dir(str(src), str(src))
    assert _tree(src) == {**CODE, "alias.py": CODE["lib/util.py"]}


# --------------------------------------------------------------------------
# fetch_submit_dir: what goes wrong


def test_missing_key_names_the_uri(s3, s3_bucket, code_dir):
    uri = f"s3://{s3_bucket()}/job/source/sourcedir.tar.gz"
    with pytest.raises(ClientError) as raised:
        storage.fetch_submit_dir(uri, str(code_dir))
    assert str(raised.value) == f"{uri} does not exist: check sagemaker_submit_directory."
    assert _tree(code_dir) == {"stale.py": b"old"}


def test_missing_bucket_names_the_uri_and_bucket(s3, code_dir):
    uri = "s3://no-such-bucket-anywhere/sourcedir.tar.gz"
    with pytest.raises(ClientError) as raised:
        storage.fetch_submit_dir(uri, str(code_dir))
    message = str(raised.value)
    assert uri in message and "no bucket 'no-such-bucket-anywhere'" in message
    assert "sagemaker_submit_directory" in message and "\n" not in message
    with pytest.raises(ClientError, match="no bucket"):
        storage.list_prefix("s3://no-such-bucket-anywhere/x")
    assert _tree(code_dir) == {"stale.py": b"old"}


@pytest.mark.parametrize("where", ["path", "file-uri"])
def test_missing_local_code(tmp_path, code_dir, where):
    missing = str(tmp_path / "nowhere" / "sourcedir.tar.gz")
    uri = f"file://{missing}" if where == "file-uri" else missing
    with pytest.raises(ClientError, match=f"sagemaker_submit_directory {uri} does not exist"):
        storage.fetch_submit_dir(uri, str(code_dir))
    assert _tree(code_dir) == {"stale.py": b"old"}


@pytest.mark.parametrize("uri", ["s3://", "s3:///key", "s3://bad bucket/k", "https://example.com/code.tar.gz",
                                 "file://relative/path", ""])
def test_malformed_locations(code_dir, uri):
    with pytest.raises(ClientError):
        storage.fetch_submit_dir(uri, str(code_dir))
    assert _tree(code_dir) == {"stale.py": b"old"}


def test_unsafe_tarball_on_s3_is_refused_naming_the_uri(s3, s3_bucket, code_dir):
    bucket = s3_bucket()
    s3.put_object(Bucket=bucket, Key="sourcedir.tar.gz", Body=_tarball({"ok.py": b"", "../../escape.py": b""}))
    uri = f"s3://{bucket}/sourcedir.tar.gz"
    with pytest.raises(ClientError) as raised:
        storage.fetch_submit_dir(uri, str(code_dir))
    assert uri in str(raised.value) and "'../../escape.py'" in str(raised.value)
    assert sorted(os.listdir(code_dir.parent)) == ["code"] and _tree(code_dir) == {"stale.py": b"old"}


def test_corrupt_tarball_on_s3(s3, s3_bucket, code_dir):
    bucket = s3_bucket()
    s3.put_object(Bucket=bucket, Key="sourcedir.tar.gz", Body=_tarball(CODE)[:40])
    with pytest.raises(ClientError, match=f"s3://{bucket}/sourcedir.tar.gz is corrupt or truncated"):
        storage.fetch_submit_dir(f"s3://{bucket}/sourcedir.tar.gz", str(code_dir))
    assert _tree(code_dir) == {"stale.py": b"old"}


# --------------------------------------------------------------------------
# Files and prefixes


def test_upload_and_download_round_trip(tmp_path, s3, s3_bucket):
    bucket = s3_bucket()
    local = tmp_path / "ckpt"
    (local / "sub" / "deeper").mkdir(parents=True)
    files = {"model.ckpt": b"weights", "sub/events.out": b"e", "sub/deeper/x.bin": os.urandom(1000)}
    for name, data in files.items():
        (local / name).write_bytes(data)
    s3.put_object(Bucket=bucket, Key="ckpt-other/not-mine", Body=b"")  # shares the string prefix only

    uploaded = storage.upload_directory(str(local), f"s3://{bucket}/ckpt")
    assert uploaded == [f"s3://{bucket}/ckpt/model.ckpt", f"s3://{bucket}/ckpt/sub/deeper/x.bin",
                        f"s3://{bucket}/ckpt/sub/events.out"]
    assert storage.list_prefix(f"s3://{bucket}/ckpt/") == ["ckpt/model.ckpt", "ckpt/sub/deeper/x.bin",
                                                             "ckpt/sub/events.out"]
    assert "ckpt-other/not-mine" in storage.list_prefix(f"s3://{bucket}/ckpt")  # S3's own prefix sense

    written = storage.download_prefix(f"s3://{bucket}/ckpt", str(tmp_path / "down"))
    assert len(written) == 3 and _tree(tmp_path / "down") == files

    assert storage.upload_file(str(local / "model.ckpt"), f"s3://{bucket}/single/") == \
        f"s3://{bucket}/single/model.ckpt"
    storage.download_file(f"s3://{bucket}/single/model.ckpt", str(tmp_path / "one" / "m"))
    assert (tmp_path / "one" / "m").read_bytes() == b"weights"


def test_download_prefix_refuses_keys_that_escape(tmp_path, s3, s3_bucket):
    bucket = s3_bucket()
    s3.put_object(Bucket=bucket, Key="ckpt/a", Body=b"1")
    s3.put_object(Bucket=bucket, Key="ckpt/../../escaped", Body=b"2")
    with pytest.raises(ClientError, match=r"ckpt/\.\./\.\./escaped.*outside"):
        storage.download_prefix(f"s3://{bucket}/ckpt/", str(tmp_path / "down"))
    assert not os.path.exists(tmp_path / "down") and not os.path.exists(tmp_path / "escaped")


def test_download_prefix_of_nothing(tmp_path, s3, s3_bucket):
    assert storage.download_prefix(f"s3://{s3_bucket()}/none/", str(tmp_path / "down")) == []


def test_upload_missing_things(tmp_path, s3, s3_bucket):
    with pytest.raises(ClientError, match="does not exist"):
        storage.upload_file(str(tmp_path / "nope"), f"s3://{s3_bucket()}/k")
    with pytest.raises(ClientError, match="does not exist"):
        storage.upload_directory(str(tmp_path / "nope"), f"s3://{s3_bucket()}/k")
    (tmp_path / "f").write_text("x")
    with pytest.raises(ClientError, match="no bucket 'no-such-bucket-for-upload'"):
        storage.upload_file(str(tmp_path / "f"), "s3://no-such-bucket-for-upload/k")


@pytest.mark.parametrize("uri, expected", [
    ("s3://bucket/key/sourcedir.tar.gz", ("bucket", "key/sourcedir.tar.gz")),
    ("s3://bucket", ("bucket", "")),
    ("s3://bucket/", ("bucket", "")),
    ("S3://my.bucket-1/a//b", ("my.bucket-1", "a//b")),
])
def test_parse_s3_uri(uri, expected):
    assert storage.parse_s3_uri(uri) == expected


@pytest.mark.parametrize("uri", ["bucket/key", "s3:/bucket/key", "s3://", "s3:///key", "s3://bad bucket/k",
                                 "s3://bücket/k", None, 42])
def test_parse_s3_uri_refuses(uri):
    with pytest.raises(ClientError):
        storage.parse_s3_uri(uri)


# --------------------------------------------------------------------------
# Client configuration


def test_endpoint_precedence():
    everything = {"AWS_ENDPOINT_URL_S3": "http://a:1", "AWS_ENDPOINT_URL": "http://b:2",
                  "S3_ENDPOINT_URL": "http://c:3"}
    assert storage.endpoint_url(everything) == "http://a:1"
    assert storage.endpoint_url({**everything, "AWS_ENDPOINT_URL_S3": ""}) == "http://b:2"
    assert storage.endpoint_url({"S3_ENDPOINT_URL": "http://c:3"}) == "http://c:3"
    assert storage.endpoint_url({}) is None
    client = storage.s3_client(environ={"AWS_ENDPOINT_URL": "http://b:2", "S3_ENDPOINT_URL": "http://c:3"})
    assert client.meta.endpoint_url == "http://b:2"
    assert client.meta.config.s3["addressing_style"] == "path"


@pytest.mark.parametrize("variable", ["AWS_ENDPOINT_URL", "S3_ENDPOINT_URL"])
def test_each_endpoint_variable_reaches_the_server(tmp_path, s3, s3_bucket, monkeypatch, s3_endpoint, variable):
    bucket = s3_bucket()
    s3.put_object(Bucket=bucket, Key="k", Body=b"found")
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3")
    monkeypatch.setenv(variable, s3_endpoint)
    storage.download_file(f"s3://{bucket}/k", str(tmp_path / "k"))
    assert (tmp_path / "k").read_bytes() == b"found"


def test_region_and_retry_configuration():
    assert storage.s3_client("eu-west-1", environ={"AWS_REGION": "us-west-2"}).meta.region_name == "eu-west-1"
    assert storage.s3_client(environ={"AWS_REGION": "us-west-2", "AWS_DEFAULT_REGION": "ap-south-1"}) \
        .meta.region_name == "us-west-2"
    assert storage.s3_client(environ={"AWS_DEFAULT_REGION": "ap-south-1"}).meta.region_name == "ap-south-1"
    client = storage.s3_client(environ={})
    assert client.meta.region_name == "us-east-1"
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": storage.DEFAULT_MAX_ATTEMPTS}
    assert (client.meta.config.s3 or {}).get("addressing_style") != "path"  # AWS itself: virtual hosts
    limited = storage.s3_client(environ={"SAGEMAKER_S3_MAX_ATTEMPTS": "3"})
    assert limited.meta.config.retries["total_max_attempts"] == 3
    with pytest.raises(ClientError, match="SAGEMAKER_S3_MAX_ATTEMPTS"):
        storage.s3_client(environ={"SAGEMAKER_S3_MAX_ATTEMPTS": "many"})


# --------------------------------------------------------------------------
# Retries and give-ups, through a real proxy that fails on purpose


class FlakyProxy:
    """An HTTP proxy on 127.0.0.1 in front of the S3 endpoint.

    The first ``failures`` requests get ``mode``: ``503`` (SlowDown),
    ``drop`` (the connection closed with no answer) or ``deny`` (403
    AccessDenied); later ones are forwarded to the endpoint.
    """

    def __init__(self, upstream: str):
        host, port = upstream.split("//", 1)[1].split(":")
        self.upstream = (host, int(port))
        self.failures = 0
        self.mode = "503"
        self.seen: list[str] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    data = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        chunk = self.rfile.read(size + 2)[:-2]
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b""):
                                pass
                            return data
                        data += chunk
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _handle(self):
                body = self._body()
                with proxy.lock:
                    proxy.seen.append(f"{self.command} {self.path}")
                    fail = len(proxy.seen) <= proxy.failures
                if fail and proxy.mode == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fail:
                    status, code = (503, "SlowDown") if proxy.mode == "503" else (403, "AccessDenied")
                    xml = f"<Error><Code>{code}</Code><Message>failing on purpose</Message></Error>".encode()
                    payload = b"" if self.command == "HEAD" else xml
                    self.send_response(status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(xml) if self.command != "HEAD" else 0))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() != "transfer-encoding"}
                headers["Content-Length"] = str(len(body))
                upstream = http.client.HTTPConnection(*proxy.upstream, timeout=30)
                try:
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    reply = upstream.getresponse()
                    data = reply.read()
                finally:
                    upstream.close()
                self.send_response(reply.status)
                for name, value in reply.getheaders():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                        self.send_header(name, value)
                self.send_header("Content-Length", reply.getheader("Content-Length", str(len(data)))
                                 if self.command == "HEAD" else str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _handle

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def flaky_proxy(s3, s3_endpoint, monkeypatch):
    """The proxy, with this process's S3 endpoint pointed at it."""
    proxy = FlakyProxy(s3_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
    yield proxy
    proxy.close()


@pytest.mark.parametrize("mode", ["503", "drop"])
def test_transient_failures_are_retried(tmp_path, s3, s3_bucket, flaky_proxy, code_dir, mode):
    bucket = s3_bucket()
    s3.put_object(Bucket=bucket, Key="sourcedir.tar.gz", Body=_tarball(CODE))
    flaky_proxy.failures, flaky_proxy.mode = 2, mode
    storage.fetch_submit_dir(f"s3://{bucket}/sourcedir.tar.gz", str(code_dir))
    assert _tree(code_dir) == CODE
    # the first request was tried three times (two failures, then through), then the download went on
    first = flaky_proxy.seen[0]
    assert flaky_proxy.seen[:3] == [first] * 3 and len(flaky_proxy.seen) >= 4, flaky_proxy.seen


@pytest.mark.parametrize("mode", ["503", "drop"])
def test_persistent_failure_is_a_bounded_platform_error(tmp_path, s3, flaky_proxy, monkeypatch, mode):
    monkeypatch.setenv("SAGEMAKER_S3_MAX_ATTEMPTS", "3")
    flaky_proxy.failures, flaky_proxy.mode = 10**6, mode
    started = time.monotonic()
    with pytest.raises(PlatformError) as raised:
        storage.download_file("s3://some-bucket/sourcedir.tar.gz", str(tmp_path / "x"))
    assert time.monotonic() - started < 15
    assert len(flaky_proxy.seen) == 3  # SAGEMAKER_S3_MAX_ATTEMPTS attempts, no more
    message = str(raised.value)
    assert flaky_proxy.url in message and "s3://some-bucket/sourcedir.tar.gz" in message and "\n" not in message
    for secret in (os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]):
        assert secret not in message
    assert not os.path.exists(tmp_path / "x")


def test_unreachable_endpoint_is_a_platform_error(tmp_path, s3, monkeypatch):
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("SAGEMAKER_S3_MAX_ATTEMPTS", "2")
    with pytest.raises(PlatformError, match=f"S3 at http://127.0.0.1:{port} could not be reached"):
        storage.fetch_submit_dir("s3://b-b-b/sourcedir.tar.gz", str(tmp_path / "code"))


def test_access_denied_is_a_client_error_naming_the_uri(tmp_path, s3, flaky_proxy):
    flaky_proxy.failures, flaky_proxy.mode = 10**6, "deny"
    uri = "s3://someone-elses-bucket/job/sourcedir.tar.gz"
    with pytest.raises(ClientError) as raised:
        storage.fetch_submit_dir(uri, str(tmp_path / "code"))
    message = str(raised.value)
    assert uri in message and "denied" in message and "permission" in message
    assert "sagemaker_submit_directory" in message
    assert len(flaky_proxy.seen) == 1  # a refusal is not retried
    with pytest.raises(ClientError, match="denied"):
        storage.list_prefix("s3://someone-elses-bucket/job/")
