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

from sagemaker_training.storage import transfer as storage
from sagemaker_training.host import submit_dir
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
    code = ("import sagemaker_training.storage.transfer, sagemaker_training.host.submit_dir, sys; "
            "assert 'boto3' not in sys.modules and 'botocore' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --------------------------------------------------------------------------
# fetch_submit_dir: every place the code can be


def test_fetch_from_s3_tarball_replaces_the_code_dir(s3, s3_bucket, code_dir):
    bucket = s3_bucket()
    s3.put_object(Bucket=bucket, Key="job-1/source/sourcedir.tar.gz", Body=_tarball(CODE))
    submit_dir.fetch_submit_dir(f"s3://{bucket}/job-1/source/sourcedir.tar.gz", str(code_dir))
    assert _tree(code_dir) == CODE
    assert sorted(os.listdir(code_dir.parent)) == ["code"]  # no download or staging left beside it


def test_fetch_from_s3_folder(s3, s3_bucket, code_dir):
    bucket = s3_bucket()
    for name, data in CODE.items():
        s3.put_object(Bucket=bucket, Key=f"src/{name}", Body=data)
    s3.put_object(Bucket=bucket, Key="src-other/not-this.py", Body=b"")
    submit_dir.fetch_submit_dir(f"s3://{bucket}/src/", str(code_dir))
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
    submit_dir.fetch_submit_dir(f"file://{archive}" if form == "file-uri" else str(archive), str(code_dir))
    assert _tree(code_dir) == CODE


@pytest.mark.parametrize("form", ["path", "file-uri"])
def test_fetch_from_local_directory_keeps_links(tmp_path, code_dir, form):
    src, _ = _local_sources(tmp_path)
    submit_dir.fetch_submit_dir(f"file://{src}" if form == "file-uri" else str(src), str(code_dir))
    assert os.readlink(code_dir / "alias.py") == "lib/util.py"
    assert _tree(code_dir) == {**CODE, "alias.py": CODE["lib/util.py"]}
    assert _tree(src) == {**CODE, "alias.py": CODE["lib/util.py"]}  # the source is untouched


def test_fetch_when_the_code_dir_is_inside_the_source(tmp_path):
    src, _ = _local_sources(tmp_path)
    submit_dir.fetch_submit_dir(str(src), str(src / "code"))
    assert _tree(src / "code") == {**CODE, "alias.py": CODE["lib/util.py"]}


def test_fetch_when_the_source_is_the_code_dir(tmp_path):
    src, _ = _local_sources(tmp_path)
    submit_dir.fetch_submit_dir(str(src), str(src))
    assert _tree(src) == {**CODE, "alias.py": CODE["lib/util.py"]}


# --------------------------------------------------------------------------
# fetch_submit_dir: what goes wrong


def test_missing_key_names_the_uri(s3, s3_bucket, code_dir):
    uri = f"s3://{s3_bucket()}/job/source/sourcedir.tar.gz"
    with pytest.raises(ClientError) as raised:
        submit_dir.fetch_submit_dir(uri, str(code_dir))
    assert str(raised.value) == f"{uri} does not exist: check sagemaker_submit_directory."
    assert _tree(code_dir) == {"stale.py": b"old"}


def test_missing_bucket_names_the_uri_and_bucket(s3, code_dir):
    uri = "s3://no-such-bucket-anywhere/sourcedir.tar.gz"
    with pytest.raises(ClientError) as raised:
        submit_dir.fetch_submit_dir(uri, str(code_dir))
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
        submit_dir.fetch_submit_dir(uri, str(code_dir))
    assert _tree(code_dir) == {"stale.py": b"old"}


@pytest.mark.parametrize("uri", ["s3://", "s3:///key", "s3://bad bucket/k", "https://example.com/code.tar.gz",
                                 "file://relative/path", ""])
def test_malformed_locations(code_dir, uri):
    with pytest.raises(ClientError):
        submit_dir.fetch_submit_dir(uri, str(code_dir))
    assert _tree(code_dir) == {"stale.py": b"old"}


def test_unsafe_tarball_on_s3_is_refused_naming_the_uri(s3, s3_bucket, code_dir):
    bucket = s3_bucket()
    s3.put_object(Bucket=bucket, Key="sourcedir.tar.gz", Body=_tarball({"ok.py": b"", "../../escape.py": b""}))
    uri = f"s3://{bucket}/sourcedir.tar.gz"
    with pytest.raises(ClientError) as raised:
        submit_dir.fetch_submit_dir(uri, str(code_dir))
    assert uri in str(raised.value) and "'../../escape.py'" in str(raised.value)
    assert sorted(os.listdir(code_dir.parent)) == ["code"] and _tree(code_dir) == {"stale.py": b"old"}


def test_corrupt_tarball_on_s3(s3, s3_bucket, code_dir):
    bucket = s3_bucket()
    s3.put_object(Bucket=bucket, Key="sourcedir.tar.gz", Body=_tarball(CODE)[:40])
    with pytest.raises(ClientError, match=f"s3://{bucket}/sourcedir.tar.gz is corrupt or truncated"):
        submit_dir.fetch_submit_dir(f"s3://{bucket}/sourcedir.tar.gz", str(code_dir))
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
    submit_dir.fetch_submit_dir(f"s3://{bucket}/sourcedir.tar.gz", str(code_dir))
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
        submit_dir.fetch_submit_dir("s3://b-b-b/sourcedir.tar.gz", str(tmp_path / "code"))


def test_access_denied_is_a_client_error_naming_the_uri(tmp_path, s3, flaky_proxy):
    flaky_proxy.failures, flaky_proxy.mode = 10**6, "deny"
    uri = "s3://someone-elses-bucket/job/sourcedir.tar.gz"
    with pytest.raises(ClientError) as raised:
        submit_dir.fetch_submit_dir(uri, str(tmp_path / "code"))
    message = str(raised.value)
    assert uri in message and "denied" in message and "permission" in message
    assert "sagemaker_submit_directory" in message
    assert len(flaky_proxy.seen) == 1  # a refusal is not retried
    with pytest.raises(ClientError, match="denied"):
        storage.list_prefix("s3://someone-elses-bucket/job/")


# --------------------------------------------------------------------------
# Listing, copying and mirroring: the calls local mode and the checkpoint mirror make


def test_list_files_refuses_a_key_that_escapes_before_anything_is_written(s3, s3_bucket):
    bucket = s3_bucket()
    s3.put_object(Bucket=bucket, Key="data/a.csv", Body=b"1")
    s3.put_object(Bucket=bucket, Key="data/../../escaped.txt", Body=b"2")
    with pytest.raises(ClientError) as raised:
        storage.list_files(f"s3://{bucket}/data", destination="the channel directory")
    assert str(raised.value) == (f"refusing to download s3://{bucket}/data/../../escaped.txt: its key would be "
                                 "written outside the channel directory; rename the object.")


def test_a_local_directory_lists_in_the_order_s3_lists_the_same_keys(tmp_path, s3, s3_bucket):
    """Key order (Pipe mode's feeding order, ShardedByS3Key's shares) is one order for both sources:
    ``a-b/x`` < ``a.txt`` < ``a/y`` < ``b`` in S3, not a directory walk's files-before-subdirectories."""
    bucket = s3_bucket()
    names = ["a/y", "b", "a.txt", "a-b/x", "a/z/w"]
    for name in names:
        s3.put_object(Bucket=bucket, Key=f"data/{name}", Body=name.encode())
        (tmp_path / "data" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / name).write_bytes(name.encode())
    remote = [e.relative for e in storage.list_files(f"s3://{bucket}/data")]
    assert remote == ["a-b/x", "a.txt", "a/y", "a/z/w", "b"]
    assert [e.relative for e in storage.list_files(str(tmp_path / "data"))] == remote


def test_list_fetch_and_store_with_progress(tmp_path, s3, s3_bucket):
    bucket = s3_bucket()
    s3.put_object(Bucket=bucket, Key="data/part/b.csv", Body=b"bb")
    s3.put_object(Bucket=bucket, Key="data/a.csv", Body=b"a" * 3000)
    s3.put_object(Bucket=bucket, Key="data/folder/", Body=b"")  # a folder marker is no file
    entries = storage.list_files(f"s3://{bucket}/data")
    assert [(e.source, e.relative, e.size) for e in entries] == [
        (f"s3://{bucket}/data/a.csv", "a.csv", 3000), (f"s3://{bucket}/data/part/b.csv", "part/b.csv", 2)]
    moved = []
    for entry in entries:
        storage.fetch(entry, str(tmp_path / "down" / entry.relative), progress=moved.append)
    assert sum(moved) == 3002 and _tree(tmp_path / "down") == {"a.csv": b"a" * 3000, "part/b.csv": b"bb"}

    local = storage.list_files(str(tmp_path / "down"))
    assert [(e.relative, e.size) for e in local] == [("a.csv", 3000), ("part/b.csv", 2)]
    moved.clear()
    assert storage.store(local[1].source, str(tmp_path / "copy" / "b.csv"), progress=moved.append) == \
        str(tmp_path / "copy" / "b.csv")
    assert moved == [2] and os.listdir(tmp_path / "copy") == ["b.csv"]  # no temporary file left
    assert storage.store(local[0].source, f"s3://{bucket}/out/a.csv") == f"s3://{bucket}/out/a.csv"
    assert s3.get_object(Bucket=bucket, Key="out/a.csv")["Body"].read() == b"a" * 3000


def test_store_to_an_unusable_local_path_is_a_client_error(tmp_path):
    (tmp_path / "f").write_text("x")
    (tmp_path / "blocker").write_text("a file where a folder should be")
    with pytest.raises(ClientError, match=r"^cannot write .*blocker/job/model.tar.gz \(the output\): Not a directory"):
        storage.store(str(tmp_path / "f"), str(tmp_path / "blocker" / "job" / "model.tar.gz"), what="the output")


def test_buckets(s3, s3_bucket):
    storage.create_bucket("made-by-storage")
    storage.create_bucket("made-by-storage")  # already ours: nothing happens
    storage.check_bucket("s3://made-by-storage/prefix")
    with pytest.raises(ClientError, match="there is no bucket 'not-made-here'; check the output"):
        storage.check_bucket("s3://not-made-here/x", what="the output")


# -- the TensorFlow checkpoint mirror, against the real endpoint ------------------------


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def _keys(s3, bucket, prefix=""):
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []))


def test_mirror_uploads_the_index_last_skips_temp_files_and_mirrors_deletes(tmp_path, s3, s3_bucket, flaky_proxy):
    from sagemaker_training.frameworks.tensorflow import checkpoints

    bucket = s3_bucket()
    local = str(tmp_path / "ckpt")
    mirror = checkpoints.S3Mirror(f"s3://{bucket}/run/ckpt", local, interval=0.05)
    assert mirror.restore() == 0
    _write(f"{local}/model.ckpt-10.index", "i10")
    _write(f"{local}/model.ckpt-10.data-00000-of-00001", "d10")
    _write(f"{local}/checkpoint", 'model_checkpoint_path: "model.ckpt-10"')
    _write(f"{local}/model.ckpt-20_temp/part-00000", "partial")
    _write(f"{local}/checkpoint.tmp8a7.tempstate123", "partial")
    _write(f"{local}/eval/events.out.tfevents.1", "e")
    flaky_proxy.seen.clear()
    assert mirror.sync() == 4
    writes = [line for line in flaky_proxy.seen if line.startswith("PUT ")]
    assert writes[-1] == f"PUT /{bucket}/run/ckpt/checkpoint", writes  # the index names only what is there
    assert _keys(s3, bucket) == ["run/ckpt/checkpoint", "run/ckpt/eval/events.out.tfevents.1",
                                 "run/ckpt/model.ckpt-10.data-00000-of-00001", "run/ckpt/model.ckpt-10.index"]
    assert mirror.sync() == 0  # nothing changed
    os.remove(f"{local}/model.ckpt-10.index")
    assert mirror.sync() == 1 and "run/ckpt/model.ckpt-10.index" not in _keys(s3, bucket)
    # The background thread picks up new files; stop() syncs a last time.
    mirror.start()
    _write(f"{local}/model.ckpt-30.index", "i30")
    deadline = time.monotonic() + 5
    while "run/ckpt/model.ckpt-30.index" not in _keys(s3, bucket) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "run/ckpt/model.ckpt-30.index" in _keys(s3, bucket)
    _write(f"{local}/model.ckpt-40.index", "i40")
    mirror.stop()
    assert s3.get_object(Bucket=bucket, Key="run/ckpt/model.ckpt-40.index")["Body"].read() == b"i40"


def test_mirror_never_follows_a_link_out_of_the_checkpoint_dir(tmp_path, s3, s3_bucket):
    from sagemaker_training.frameworks.tensorflow import checkpoints

    bucket = s3_bucket()
    local = tmp_path / "ckpt"
    _write(f"{local}/model.ckpt-1.index", "i1")
    _write(f"{tmp_path}/secret.txt", "not a checkpoint")
    os.symlink(tmp_path / "secret.txt", local / "leak.txt")
    os.symlink("/etc/passwd", local / "checkpoint")  # even the index, read last
    os.symlink(tmp_path, local / "parent")  # a directory link is not walked
    os.symlink("model.ckpt-1.index", local / "alias.index")  # stays inside: its content is the checkpoint's
    mirror = checkpoints.S3Mirror(f"s3://{bucket}/run/ckpt", str(local), interval=60)
    assert mirror.sync() == 2
    assert _keys(s3, bucket) == ["run/ckpt/alias.index", "run/ckpt/model.ckpt-1.index"]
    assert s3.get_object(Bucket=bucket, Key="run/ckpt/alias.index")["Body"].read() == b"i1"
    assert storage.upload_directory(str(local), f"s3://{bucket}/up") == [f"s3://{bucket}/up/alias.index",
                                                                         f"s3://{bucket}/up/model.ckpt-1.index"]


def test_mirror_restore_resumes_where_the_last_job_stopped(tmp_path, s3, s3_bucket):
    from sagemaker_training.frameworks.tensorflow import checkpoints

    bucket = s3_bucket()
    first = str(tmp_path / "first")
    _write(f"{first}/model.ckpt-10.index", "i10")
    _write(f"{first}/checkpoint", 'model_checkpoint_path: "model.ckpt-10"')
    checkpoints.S3Mirror(f"s3://{bucket}/ckpt", first).stop()
    s3.put_object(Bucket=bucket, Key="ckpt/model.ckpt-5_temp/part", Body=b"half-written")  # never restored

    again = str(tmp_path / "again")
    mirror = checkpoints.S3Mirror(f"s3://{bucket}/ckpt", again)
    assert mirror.restore() == 2
    assert _tree(again) == {"checkpoint": b'model_checkpoint_path: "model.ckpt-10"', "model.ckpt-10.index": b"i10"}
    assert mirror.sync() == 0  # what was restored is not uploaded back
    # training goes on from step 10: the next checkpoint and the new index are all that is uploaded
    _write(f"{again}/model.ckpt-20.index", "i20")
    _write(f"{again}/checkpoint", 'model_checkpoint_path: "model.ckpt-20"')
    os.utime(f"{again}/checkpoint", ns=(time.time_ns() + 10**9,) * 2)
    assert mirror.sync() == 2
    index = s3.get_object(Bucket=bucket, Key="ckpt/checkpoint")["Body"].read()
    assert index == b'model_checkpoint_path: "model.ckpt-20"'


def test_mirror_restore_refuses_a_key_that_escapes(tmp_path, s3, s3_bucket):
    from sagemaker_training.frameworks.tensorflow import checkpoints

    bucket = s3_bucket()
    s3.put_object(Bucket=bucket, Key="runs/ckpt/model.ckpt-1.index", Body=b"i")
    s3.put_object(Bucket=bucket, Key="runs/ckpt/data/../../escaped.txt", Body=b"outside")
    local = tmp_path / "job" / "checkpoints"
    with pytest.raises(ClientError) as raised:
        checkpoints.S3Mirror(f"s3://{bucket}/runs/ckpt", str(local)).restore()
    assert str(raised.value) == (f"refusing to download s3://{bucket}/runs/ckpt/data/../../escaped.txt: its key "
                                 f"would be written outside {local}; rename the object.")
    assert _tree(tmp_path) == {}  # nothing written, above the checkpoint dir or in it


def test_mirror_errors_are_the_users(tmp_path, s3, s3_bucket, flaky_proxy):
    from sagemaker_training.frameworks.tensorflow import checkpoints

    with pytest.raises(ClientError, match=r"^s3://no-such-ckpt-bucket/ckpt/ does not exist: there is no bucket "
                                          r"'no-such-ckpt-bucket'; check checkpoint_path\.$"):
        checkpoints.S3Mirror("s3://no-such-ckpt-bucket/ckpt", str(tmp_path / "a")).restore()
    bucket = s3_bucket()
    _write(str(tmp_path / "b" / "model.ckpt-1.index"), "i")
    flaky_proxy.failures, flaky_proxy.mode = 10**6, "deny"
    with pytest.raises(ClientError) as raised:
        checkpoints.S3Mirror(f"s3://{bucket}/ckpt", str(tmp_path / "b")).sync()
    assert str(raised.value).startswith(f"access to s3://{bucket}/ckpt/model.ckpt-1.index was denied (AccessDenied)")
    assert "check checkpoint_path" in str(raised.value)
    with pytest.raises(ClientError, match=r"checkpoint_path: 's3:///nobucket' has no bucket name"):
        checkpoints.S3Mirror("s3:///nobucket", str(tmp_path / "c"))


def test_mirror_sync_interval_is_read_by_settings():
    from sagemaker_training.frameworks.tensorflow import checkpoints

    assert checkpoints.sync_seconds({}) == 10.0
    assert checkpoints.sync_seconds({"SAGEMAKER_TF_CHECKPOINT_SYNC_SECONDS": "2.5"}) == 2.5
    with pytest.raises(ClientError, match=r"SAGEMAKER_TF_CHECKPOINT_SYNC_SECONDS='abc' is not valid"):
        checkpoints.sync_seconds({"SAGEMAKER_TF_CHECKPOINT_SYNC_SECONDS": "abc"})
