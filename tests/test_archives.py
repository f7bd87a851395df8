"""The extraction policy on real tarballs: every refusal, and no partial damage."""

import io
import os
import stat
import tarfile

import pytest

from sagemaker_training import archives
from sagemaker_training.errors import ClientError


def _tarball(path, members):
    """members: list of (TarInfo, bytes|None)."""
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return str(path)


def _file(name, data=b"x", mode=0o644):
    info = tarfile.TarInfo(name)
    info.mode = mode
    return info, data


def _special(name, kind, linkname=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, None


@pytest.fixture
def dest(tmp_path):
    d = tmp_path / "code"
    d.mkdir()
    (d / "old.py").write_text("previous code")
    return d


BAD = {
    "absolute": [_file("/etc/evil")],
    "dotdot": [_file("../evil.py")],
    "nested-dotdot": [_file("pkg/../../evil.py")],
    "symlink-absolute": [_special("link", tarfile.SYMTYPE, "/etc/passwd")],
    "symlink-escape": [_special("pkg/link", tarfile.SYMTYPE, "../../outside")],
    "hardlink": [_file("a.py"), _special("b.py", tarfile.LNKTYPE, "a.py")],
    "chardev": [_special("dev", tarfile.CHRTYPE)],
    "blockdev": [_special("blk", tarfile.BLKTYPE)],
    "fifo": [_special("pipe", tarfile.FIFOTYPE)],
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_refusals_leave_nothing_behind(tmp_path, dest, case):
    archive = _tarball(tmp_path / "sourcedir.tar.gz", [_file("train.py", b"print(1)")] + BAD[case])
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(ClientError) as raised:
        archives.extract_tarball(archive, str(dest))
    message = str(raised.value)
    assert "\n" not in message and "sourcedir.tar.gz" in message and "member" in message
    assert sorted(os.listdir(dest)) == ["old.py"]  # the old code dir is intact, nothing half-extracted
    assert sorted(os.listdir(tmp_path)) == before  # no staging dir left, nothing written beside
    assert not os.path.exists(tmp_path / "evil.py") and not os.path.exists(tmp_path / "outside")


@pytest.mark.parametrize("content", [b"not an archive at all", b""], ids=["garbage", "empty"])
def test_not_an_archive(tmp_path, dest, content):
    path = tmp_path / "sourcedir.tar.gz"
    path.write_bytes(content)
    with pytest.raises(ClientError, match="not a (gzip or tar|tar or gzip) archive|truncated|corrupt"):
        archives.extract_tarball(str(path), str(dest))
    assert sorted(os.listdir(dest)) == ["old.py"]


def test_truncated_gzip(tmp_path, dest):
    archive = _tarball(tmp_path / "full.tar.gz", [_file("big.bin", os.urandom(200_000))])
    data = open(archive, "rb").read()
    cut = tmp_path / "sourcedir.tar.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ClientError, match="truncated|corrupt|not a (gzip or tar|tar or gzip) archive"):
        archives.extract_tarball(str(cut), str(dest))
    assert sorted(os.listdir(dest)) == ["old.py"]


def test_happy_path_replaces_the_code_dir(tmp_path, dest):
    archive = _tarball(tmp_path / "s.tar.gz", [
        _file("train.py", b"print('hi')"),
        _file("pkg/util.py", b"X = 1"),
        _file("run.sh", b"#!/bin/sh\n", mode=0o755),
        _file("setuid", b"x", mode=0o4755),
        _special("pkg/alias.py", tarfile.SYMTYPE, "util.py"),
    ])
    archives.extract_tarball(archive, str(dest))
    assert sorted(os.listdir(dest)) == ["pkg", "run.sh", "setuid", "train.py"]
    assert (dest / "pkg" / "alias.py").read_text() == "X = 1"
    assert os.stat(dest / "run.sh").st_mode & stat.S_IXUSR
    assert not os.stat(dest / "setuid").st_mode & stat.S_ISUID


def test_pack_then_extract_round_trip(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.py").write_text("a")
    (src / "sub" / "b.txt").write_text("b")
    archive = archives.pack_directory(str(src), str(tmp_path / "out" / "sourcedir.tar.gz"))
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == ["a.py", "sub", "sub/b.txt"]  # relative, no "./", no archive root
    archives.extract_tarball(archive, str(tmp_path / "code"))
    assert (tmp_path / "code" / "sub" / "b.txt").read_text() == "b"
