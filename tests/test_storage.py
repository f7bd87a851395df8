"""Storage against a real S3 endpoint (moto's server), including retries through a flaky proxy."""

import http.client
import http.server
import os
import subprocess
import sys
import tarfile
import threading
import time

import pytest

from sagemaker_training import storage
from sagemaker_training.errors import ClientError, PlatformError


def _source(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.py").write_text("print('hello')\n")
    archive = tmp_path / "sourcedir.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src / "train.py", arcname="train.py")
    return src, archive


def _bucket(s3, name):
    s3.create_bucket(Bucket=name)
    return name


def test_boto3_is_not_imported_by_the_module():
    code = "import sagemaker_training.storage, sys; assert 'boto3' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_fetch_submit_dir_every_kind(tmp_path, s3):
    src, archive = _source(tmp_path)
    bucket = _bucket(s3, "fetch-kinds")
    s3.upload_file(str(archive), bucket, "job/source/sourcedir.tar.gz")
    for i, uri in enumerate([f"s3://{bucket}/job/source/sourcedir.tar.gz", f"file://{archive}",
                             str(archive), str(src), f"file://{src}"]):
        code = tmp_path / f"code{i}"
        storage.fetch_submit_dir(uri, str(code))
        assert (code / "train.py").read_text() == "print('hello')\n", uri


def test_missing_key_and_bucket_name_the_uri(tmp_path, s3):
    bucket = _bucket(s3, "missing-things")
    for uri in (f"s3://{bucket}/nope/sourcedir.tar.gz", "s3://no-such-bucket-here/x.tar.gz"):
        with pytest.raises(ClientError) as raised:
            storage.fetch_submit_dir(uri, str(tmp_path / "code"))
        assert uri in str(raised.value) and "does not exist" in str(raised.value)
    with pytest.raises(ClientError, match="does not exist"):
        storage.fetch_submit_dir(str(tmp_path / "nowhere"), str(tmp_path / "code"))


def test_prefix_round_trip(tmp_path, s3):
    bucket = _bucket(s3, "round-trip")
    local = tmp_path / "up"
    (local / "d").mkdir(parents=True)
    (local / "a").write_text("1")
    (local / "d" / "b").write_text("2")
    storage.upload_directory(str(local), f"s3://{bucket}/ckpt/")
    assert sorted(storage.list_prefix(f"s3://{bucket}/ckpt")) == ["ckpt/a", "ckpt/d/b"]
    written = storage.download_prefix(f"s3://{bucket}/ckpt", str(tmp_path / "down"))
    assert len(written) == 2 and (tmp_path / "down" / "d" / "b").read_text() == "2"


def test_endpoint_precedence():
    env = {"S3_ENDPOINT_URL": "http://c", "AWS_ENDPOINT_URL": "http://b"}
    assert storage.endpoint_url(env) == "http://b"
    assert storage.endpoint_url({**env, "AWS_ENDPOINT_URL_S3": "http://a"}) == "http://a"
    assert storage.endpoint_url({"S3_ENDPOINT_URL": "http://c"}) == "http://c"


class _FlakyProxy(http.server.BaseHTTPRequestHandler):
    """Fails the first ``failures`` requests (503 or a dropped connection), then forwards."""

    upstream = None
    failures = 0
    mode = "503"
    seen = 0

    def _handle(self):
        cls = type(self)
        cls.seen += 1
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if cls.seen <= cls.failures:
            if cls.mode == "drop":
                self.close_connection = True
                self.connection.close()
                return
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        conn = http.client.HTTPConnection(*cls.upstream)
        conn.request(self.command, self.path, body=body, headers=dict(self.headers))
        reply = conn.getresponse()
        data = reply.read()
        self.send_response(reply.status)
        for k, v in reply.getheaders():
            if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _handle

    def log_message(self, *args):
        pass


@pytest.fixture
def flaky_proxy(s3_endpoint, monkeypatch):
    host, port = s3_endpoint.split("//")[1].split(":")
    handler = type("Proxy", (_FlakyProxy,), {"upstream": (host, int(port)), "seen": 0})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{server.server_port}")
    yield handler
    server.shutdown()


@pytest.mark.parametrize("mode", ["503", "drop"])
def test_retries_through_failures(tmp_path, s3, flaky_proxy, mode):
    _, archive = _source(tmp_path)
    bucket = _bucket(s3, f"flaky-{mode}")
    s3.upload_file(str(archive), bucket, "sourcedir.tar.gz")
    flaky_proxy.failures, flaky_proxy.mode = 2, mode
    storage.fetch_submit_dir(f"s3://{bucket}/sourcedir.tar.gz", str(tmp_path / "code"))
    assert (tmp_path / "code" / "train.py").exists()
    assert flaky_proxy.seen > 2  # the failed attempts were retried


def test_gives_up_with_a_platform_error(tmp_path, s3, flaky_proxy, monkeypatch):
    monkeypatch.setenv("SAGEMAKER_S3_MAX_ATTEMPTS", "3")
    flaky_proxy.failures = 10**6
    started = time.monotonic()
    with pytest.raises(PlatformError):
        storage.download_file("s3://any/sourcedir.tar.gz", str(tmp_path / "x"))
    assert time.monotonic() - started < 30
    assert 3 <= flaky_proxy.seen <= 4  # bounded by SAGEMAKER_S3_MAX_ATTEMPTS, not endless
    assert "testing" not in os.environ.get("AWS_ENDPOINT_URL_S3", "")
