"""archives: the extraction policy on real tarballs, and packing.

Every refusal is checked for what matters to a job: a one-line ClientError
naming the archive and the member, nothing written outside the destination,
and the destination left exactly as it was (no half-extracted code dir, no
staging directory left behind).
"""

from __future__ import annotations

import io
import os
import random
import shutil
import stat
import subprocess
import tarfile

import pytest

from sagemaker_training.archives import tarball as archives
from sagemaker_training.errors import ClientError


def _file(name, data=b"x", mode=0o644, **attrs):
    info = tarfile.TarInfo(name)
    info.mode = mode
    info.size = len(data)
    for key, value in attrs.items():
        setattr(info, key, value)
    return info, data


def _dir(name, mode=0o755):
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    return info, None


def _entry(name, kind, linkname=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mode = 0o777 if kind == tarfile.SYMTYPE else 0o644
    return info, None


def _symlink(name, target):
    return _entry(name, tarfile.SYMTYPE, target)


def _write_tar(path, members, mode="w:gz") -> str:
    with tarfile.open(path, mode) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return str(path)


@pytest.fixture(params=["pep706", "python-3.11.2"])
def work(request, tmp_path, monkeypatch):
    """tmp/in (archives), tmp/work/code (an existing code dir with old content). Each test runs
    twice: on this Python, and as on Debian bookworm's Python 3.11.2 (the images'), which has no
    extraction filters (PEP 706) and no ``TarInfo.replace``."""
    if request.param == "python-3.11.2":
        monkeypatch.delattr(tarfile, "data_filter")
        monkeypatch.delattr(tarfile.TarInfo, "replace")
    return _make_work(tmp_path)


@pytest.fixture
def plain_work(tmp_path):
    """``work`` on this Python only."""
    return _make_work(tmp_path)


def _make_work(tmp_path):
    (tmp_path / "in").mkdir()
    code = tmp_path / "work" / "code"
    code.mkdir(parents=True)
    (code / "old.py").write_text("previous code")
    return tmp_path


def _tree(root) -> dict:
    """Every path below ``root`` -> file content, 'dir', or '-> target'."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            if os.path.islink(path):
                found[rel] = "-> " + os.readlink(path)
            elif os.path.isdir(path):
                found[rel] = "dir"
            else:
                with open(path, "rb") as f:
                    found[rel] = f.read()
    return found


def _assert_untouched(work):
    assert sorted(os.listdir(work / "work")) == ["code"], "staging left behind or something written beside code/"
    assert _tree(work / "work" / "code") == {"old.py": b"previous code"}
    assert not os.path.lexists(work / "outside")
    assert sorted(os.listdir(work)) == ["in", "work"]


# --------------------------------------------------------------------------
# Refusals


def _refusals(tmp):
    outside = os.path.join(str(tmp), "outside")
    return {
        "absolute-name": ([_file(f"{outside}/evil.py")], f"{outside}/evil.py", "absolute"),
        "dotdot": ([_file("../outside")], "../outside", "'..'"),
        "nested-dotdot": ([_dir("pkg"), _file("pkg/../../outside")], "pkg/../../outside", "'..'"),
        "symlink-absolute": ([_symlink("pkg/link", outside)], "pkg/link", "absolute"),
        "symlink-dotdot": ([_dir("pkg"), _symlink("pkg/link", "../../outside")], "pkg/link", "outside"),
        "symlink-to-parent": ([_symlink("up", "..")], "up", "outside"),
        # each link harmless alone: a/b -> .. is the root, but esc -> a/b/.. is its parent
        "symlink-chain": ([_dir("a"), _symlink("a/b", ".."), _symlink("esc", "a/b/..")], "esc", "outside"),
        "symlink-loop": ([_symlink("x", "y"), _symlink("y", "x")], "y", "loop"),
        "file-as-parent": ([_file("a"), _file("a/b")], "a/b", "made a file"),
        "symlink-over-dir": ([_symlink("lib", "train.py")], "lib", "replaces a directory"),
        "file-over-dir": ([_file("lib")], "lib", "replaces a directory"),
        "hardlink": ([_file("a.py"), _entry("b.py", tarfile.LNKTYPE, "a.py")], "b.py", "hard link"),
        "hardlink-outside": ([_entry("b.py", tarfile.LNKTYPE, outside)], "b.py", "hard link"),
        "chardev": ([_entry("dev/null", tarfile.CHRTYPE)], "dev/null", "device"),
        "blockdev": ([_entry("sda", tarfile.BLKTYPE)], "sda", "device"),
        "fifo": ([_entry("pipe", tarfile.FIFOTYPE)], "pipe", "FIFO"),
    }


REFUSALS = sorted(_refusals("/x"))


@pytest.mark.parametrize("case", REFUSALS)
def test_refused_member_leaves_everything_as_it_was(work, case):
    members, bad_name, why = _refusals(work)[case]
    # the harmless members come first: they must not be written either
    archive = _write_tar(work / "in" / "sourcedir.tar.gz",
                         [_file("train.py", b"print(1)"), _dir("lib"), _file("lib/util.py")] + members)
    with pytest.raises(ClientError) as raised:
        archives.extract_tarball(archive, str(work / "work" / "code"))
    message = str(raised.value)
    assert "\n" not in message
    assert archive in message and repr(bad_name) in message and why in message
    _assert_untouched(work)


def test_refusal_into_a_new_dest_creates_nothing(work):
    archive = _write_tar(work / "in" / "s.tar.gz", [_file("ok.py"), _symlink("l", "/etc")])
    with pytest.raises(ClientError, match="'l'"):
        archives.extract_tarball(archive, str(work / "work" / "fresh"))
    assert not os.path.exists(work / "work" / "fresh")
    _assert_untouched(work)


def test_display_name_replaces_the_path_in_messages(work):
    archive = _write_tar(work / "in" / "tmp123.tar.gz", [_file("/abs.py")])
    with pytest.raises(ClientError) as raised:
        archives.extract_tarball(archive, str(work / "work" / "code"), display_name="s3://b/k/sourcedir.tar.gz")
    assert "s3://b/k/sourcedir.tar.gz" in str(raised.value) and "tmp123" not in str(raised.value)


# --------------------------------------------------------------------------
# Not an archive, corrupt, truncated


def _gzip_bytes(tmp, members):
    return open(_write_tar(tmp / "full.tar.gz", members), "rb").read()


def _broken(kind, tmp):
    # Seeded, so that each kind of damage hits the same place of the same stream every run
    # (zeroed bytes in a block header read "invalid block type", in stored data "CRC check failed").
    noise = random.Random(kind)
    big = [_file("a.bin", noise.randbytes(300_000)), _file("b.bin", noise.randbytes(300_000))]
    if kind == "garbage":
        return b"this is not an archive\n" * 100
    if kind == "empty":
        return b""
    if kind == "zip":
        return b"PK\x03\x04" + os.urandom(500)
    if kind == "truncated-gzip":
        data = _gzip_bytes(tmp, big)
        return data[: len(data) // 2]
    if kind == "truncated-gzip-trailer":
        return _gzip_bytes(tmp, big)[:-6]
    if kind == "corrupt-gzip":
        data = bytearray(_gzip_bytes(tmp, big))
        middle = len(data) // 2
        data[middle:middle + 64] = bytes(64)
        return bytes(data)
    if kind == "truncated-tar":
        data = open(_write_tar(tmp / "full.tar", big, mode="w"), "rb").read()
        return data[: 512 + 300_000 + 512 + 1000]
    raise AssertionError(kind)


NOT_AN_ARCHIVE = "is not a tar or gzip archive ({}): give a .tar.gz of the code"
DAMAGED = "is corrupt or truncated ({}): upload the archive again (check that the upload completed)."
BROKEN = {  # each kind of file -> the one reason it gets
    "garbage": NOT_AN_ARCHIVE.format("file could not be opened successfully"),
    "empty": NOT_AN_ARCHIVE.format("it is empty"),
    "zip": NOT_AN_ARCHIVE.format("file could not be opened successfully"),
    "truncated-gzip": DAMAGED.format("Compressed file ended before the end-of-stream marker was reached"),
    "truncated-gzip-trailer": DAMAGED.format("Compressed file ended before the end-of-stream marker was reached"),
    "corrupt-gzip": DAMAGED.format("CRC check failed"),
    "truncated-tar": DAMAGED.format("unexpected end of data"),
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_unreadable_archives_are_client_errors(work, kind):
    path = work / "in" / "sourcedir.tar.gz"
    path.write_bytes(_broken(kind, work / "in"))
    with pytest.raises(ClientError) as raised:
        archives.extract_tarball(str(path), str(work / "work" / "code"))
    message = str(raised.value)
    assert "\n" not in message
    head, why = BROKEN[kind].split("(", 1)
    if kind == "corrupt-gzip":  # the CRC values differ from run to run
        assert message.startswith(f"{path} {head}(CRC check failed 0x"), message
        assert message.endswith(why.split(")", 1)[1]), message
    else:
        assert message.startswith(f"{path} {BROKEN[kind]}"), message
    for name in os.listdir(work / "in"):  # keep _assert_untouched's view of tmp simple
        os.remove(work / "in" / name)
    _assert_untouched(work)


def test_missing_archive(work):
    with pytest.raises(ClientError, match="does not exist"):
        archives.extract_tarball(str(work / "in" / "nope.tar.gz"), str(work / "work" / "code"))
    _assert_untouched(work)


# --------------------------------------------------------------------------
# What is allowed


def test_extract_replaces_the_code_dir(work):
    archive = _write_tar(work / "in" / "sourcedir.tar.gz", [
        _file("train.py", b"print('hi')"),
        _dir("pkg"),
        _file("pkg/__init__.py", b""),
        _file("pkg/deep/er/util.py", b"X = 1"),  # parents not in the archive
        _symlink("pkg/alias.py", "deep/er/util.py"),
        _symlink("pkg/self", "."),
        _symlink("top", "pkg/deep"),
        _symlink("back", "pkg/../train.py"),
        _symlink("dangling", "not-there-yet"),
    ])
    dest = work / "work" / "code"
    archives.extract_tarball(archive, str(dest))
    assert _tree(dest) == {
        "train.py": b"print('hi')",
        "pkg": "dir",
        "pkg/__init__.py": b"",
        "pkg/deep": "dir",
        "pkg/deep/er": "dir",
        "pkg/deep/er/util.py": b"X = 1",
        "pkg/alias.py": "-> deep/er/util.py",
        "pkg/self": "-> .",
        "top": "-> pkg/deep",
        "back": "-> pkg/../train.py",
        "dangling": "-> not-there-yet",
    }
    assert (dest / "pkg" / "alias.py").read_text() == "X = 1"
    assert (dest / "top" / "er" / "util.py").read_text() == "X = 1"
    assert sorted(os.listdir(work / "work")) == ["code"]  # no staging or old copy left


def test_extract_into_a_new_dest_and_dot_slash_names(work):
    """``tar -czf x.tar.gz -C src .`` names members ./train.py and has a ./ entry."""
    archive = _write_tar(work / "in" / "s.tar.gz", [_dir("."), _file("./train.py", b"1"), _dir("./sub"),
                                                    _file("./sub/m.py", b"2")])
    dest = work / "work" / "new" / "code"
    archives.extract_tarball(archive, str(dest))
    assert _tree(dest) == {"train.py": b"1", "sub": "dir", "sub/m.py": b"2"}
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o755  # not the staging directory's 0700
    os.chmod(dest, 0o750)
    archives.extract_tarball(archive, str(dest))
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o750  # a replaced dest keeps its mode


def test_later_members_replace_earlier_ones(work):
    archive = _write_tar(work / "in" / "s.tar.gz", [
        _file("a.py", b"first"), _file("a.py", b"second"),
        _symlink("b", "a.py"), _file("b", b"file now"),  # must not write through the old link
    ])
    dest = work / "work" / "code"
    archives.extract_tarball(archive, str(dest))
    assert _tree(dest) == {"a.py": b"second", "b": b"file now"}


@pytest.mark.parametrize("mode", ["w:gz", "w", "w:bz2", "w:xz"])
def test_every_tar_compression(work, mode):
    archive = _write_tar(work / "in" / "s.tar", [_file("train.py", b"ok")], mode=mode)
    archives.extract_tarball(archive, str(work / "work" / "code"))
    assert _tree(work / "work" / "code") == {"train.py": b"ok"}


def test_modes_owners_and_times(work):
    archive = _write_tar(work / "in" / "s.tar.gz", [
        _file("run.sh", b"#!/bin/sh\n", mode=0o755, mtime=1_600_000_000),
        _file("plain.py", b"", mode=0o644),
        _file("setuid", b"", mode=0o4755),
        _file("setgid", b"", mode=0o2750),
        _file("writable", b"", mode=0o666),
        _file("unreadable", b"secret", mode=0o000),
        _file("owned", b"", mode=0o644, uid=12345, gid=23456, uname="someone", gname="others"),
        _dir("sticky", mode=0o1777),
        _dir("readonly", mode=0o555),
        _file("readonly/inside.py", b"still written"),
    ])
    dest = work / "work" / "code"
    archives.extract_tarball(archive, str(dest))

    def mode(name):
        return stat.S_IMODE(os.lstat(dest / name).st_mode)

    assert mode("run.sh") == 0o755 and os.stat(dest / "run.sh").st_mtime == 1_600_000_000
    assert mode("plain.py") == 0o644
    assert mode("setuid") == 0o755  # setuid dropped, exec kept
    assert mode("setgid") == 0o750
    assert mode("writable") == 0o644  # no write for group and others
    assert mode("unreadable") == 0o600 and (dest / "unreadable").read_bytes() == b"secret"
    assert mode("sticky") == 0o755
    assert mode("readonly") == 0o755 and (dest / "readonly" / "inside.py").read_bytes() == b"still written"
    owned = os.stat(dest / "owned")
    assert (owned.st_uid, owned.st_gid) == (os.getuid(), os.getgid())  # ownership never applied


# --------------------------------------------------------------------------
# Packing


def _source_tree(src):
    (src / "pkg" / "data").mkdir(parents=True)
    (src / "train.py").write_text("print('train')\n")
    (src / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(src / "run.sh", 0o755)
    (src / "pkg" / "__init__.py").write_text("")
    (src / "pkg" / "data" / "table.csv").write_text("1,2\n")
    (src / "empty").mkdir()
    os.symlink("pkg/data/table.csv", src / "table.csv")
    return src


def test_pack_then_extract_round_trip(tmp_path):
    src = _source_tree(tmp_path / "src")
    archive = archives.pack_directory(str(src), str(tmp_path / "out" / "sourcedir.tar.gz"))
    assert archive == str(tmp_path / "out" / "sourcedir.tar.gz")
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["empty", "pkg", "pkg/__init__.py", "pkg/data", "pkg/data/table.csv",
                                         "run.sh", "table.csv", "train.py"]
    assert all(m.uid == 0 and m.gid == 0 and not m.uname for m in members)
    assert os.listdir(tmp_path / "out") == ["sourcedir.tar.gz"]  # no temporary file left
    dest = tmp_path / "code"
    archives.extract_tarball(archive, str(dest))
    assert _tree(dest) == _tree(src)
    assert os.stat(dest / "run.sh").st_mode & stat.S_IXUSR


def test_pack_is_deterministic(tmp_path):
    src = _source_tree(tmp_path / "src")
    first = archives.pack_directory(str(src), str(tmp_path / "a.tar.gz"))
    second = archives.pack_directory(str(src), str(tmp_path / "b.tar.gz"))
    assert open(first, "rb").read() == open(second, "rb").read()


def test_pack_output_is_always_extractable(tmp_path):
    """Hard links become plain files, links out of the tree are stored as
    what they point to, setuid bits are dropped, and an archive written
    inside the directory does not include itself."""
    outside = tmp_path / "shared.py"
    outside.write_text("shared = 1\n")
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.py").write_text("a")
    os.link(src / "a.py", src / "b.py")
    os.symlink(str(outside), src / "shared.py")
    os.symlink("../shared.py", src / "shared_rel.py")
    os.symlink("/nowhere/at/all", src / "dangling")
    (src / "tool").write_text("")
    os.chmod(src / "tool", 0o4755)
    archive = archives.pack_directory(str(src), str(src / "sourcedir.tar.gz"))
    with tarfile.open(archive) as tar:
        assert all(m.isreg() for m in tar.getmembers())
        assert "sourcedir.tar.gz" not in tar.getnames() and "dangling" not in tar.getnames()
        assert tar.getmember("tool").mode == 0o755
    dest = tmp_path / "code"
    archives.extract_tarball(archive, str(dest))
    assert _tree(dest) == {"a.py": b"a", "b.py": b"a", "shared.py": b"shared = 1\n",
                           "shared_rel.py": b"shared = 1\n", "tool": b""}


def test_pack_missing_directory(tmp_path):
    with pytest.raises(ClientError, match="not a directory"):
        archives.pack_directory(str(tmp_path / "nope"), str(tmp_path / "x.tar.gz"))
    assert not os.path.exists(tmp_path / "x.tar.gz")


# --------------------------------------------------------------------------
# Bounds: what an archive expands to, sparse members, deep and long names


def test_gnu_sparse_member_is_refused_before_anything_is_written(work):
    """A real GNU tar --sparse archive: ~130 bytes that expand to a 64 MiB file."""
    if shutil.which("tar") is None:
        pytest.skip("GNU tar is not installed")
    sparse = work / "in" / "big.bin"
    with open(sparse, "wb") as f:
        f.truncate(64 * 1024 * 1024)
    archive = work / "in" / "sourcedir.tar.gz"
    subprocess.run(["tar", "--sparse", "-czf", str(archive), "-C", str(work / "in"), "big.bin"], check=True)
    sparse.unlink()
    assert archive.stat().st_size < 400
    with pytest.raises(ClientError) as raised:
        archives.extract_tarball(str(archive), str(work / "work" / "code"))
    assert str(raised.value).startswith(f"refusing to extract {archive}: member 'big.bin' is a GNU sparse file "
                                        "(67108864 bytes expanded; sparse files are not allowed)")
    archive.unlink()
    _assert_untouched(work)


def test_gzip_bomb_is_refused_by_the_limit_naming_member_and_size(work, monkeypatch):
    monkeypatch.setenv("SAGEMAKER_MAX_CODE_BYTES", "1000000")
    archive = _write_tar(work / "in" / "sourcedir.tar.gz", [_file("train.py", b"print(1)"),
                                                             _file("zeros.bin", bytes(2_000_000))])
    assert os.path.getsize(archive) < 10_000  # 2 MB of zeros in a few KB
    with pytest.raises(ClientError) as raised:
        archives.extract_tarball(archive, str(work / "work" / "code"))
    assert str(raised.value).startswith(
        f"refusing to extract {archive}: member 'zeros.bin' (2000000 bytes) takes the archive's contents to "
        "2000008 bytes, over the limit of 1000000 (SAGEMAKER_MAX_CODE_BYTES)")
    os.remove(archive)
    _assert_untouched(work)


def test_limit_counts_every_member_and_the_default_is_far_above_real_code(work, monkeypatch):
    members = [_file(f"part{i}.bin", bytes(400)) for i in range(5)]
    archive = _write_tar(work / "in" / "s.tar.gz", members)
    monkeypatch.setenv("SAGEMAKER_MAX_CODE_BYTES", "1999")
    with pytest.raises(ClientError, match=r"member 'part4.bin' \(400 bytes\) takes the archive's contents to 2000"):
        archives.extract_tarball(archive, str(work / "work" / "code"))
    monkeypatch.setenv("SAGEMAKER_MAX_CODE_BYTES", "2000")  # exactly at the limit is fine
    archives.extract_tarball(archive, str(work / "work" / "code"))
    monkeypatch.delenv("SAGEMAKER_MAX_CODE_BYTES")
    assert archives.max_code_bytes() == 10 * 1024**3
    monkeypatch.setenv("SAGEMAKER_MAX_CODE_BYTES", "lots")
    with pytest.raises(ClientError, match="SAGEMAKER_MAX_CODE_BYTES='lots' is not valid"):
        archives.extract_tarball(archive, str(work / "work" / "code"))


def test_member_a_thousand_directories_deep_is_refused(work):
    name = "d/" * 1000 + "f.py"
    archive = _write_tar(work / "in" / "s.tar.gz", [_file("train.py"), _file(name)])
    with pytest.raises(ClientError) as raised:
        archives.extract_tarball(archive, str(work / "work" / "code"))
    message = str(raised.value)
    assert "is 1000 directories deep (at most 256 are allowed)" in message
    assert len(message) < 600 and "(2004 characters)" in message  # the name is shortened
    os.remove(archive)
    _assert_untouched(work)


def test_long_component_is_refused_with_the_cause_first(work):
    archive = _write_tar(work / "in" / "s.tar.gz", [_file("a" * 10_000 + ".py")])
    with pytest.raises(ClientError) as raised:
        archives.extract_tarball(archive, str(work / "work" / "code"))
    message = str(raised.value)
    assert len(message) < 600
    assert "has a path component of 10003 bytes (file systems allow 255)" in message
    os.remove(archive)
    _assert_untouched(work)


def test_path_longer_than_the_kernel_takes_is_refused_before_anything_is_written(work):
    """Components that each pass, a path over PATH_MAX: refused by the policy, the cause first
    (it used to reach the file system and end in "File name too long ... check the free disk space")."""
    name = "/".join(["b" * 200] * 50) + "/x.py"
    archive = _write_tar(work / "in" / "s.tar.gz", [_file(name)])
    with pytest.raises(ClientError) as raised:
        archives.extract_tarball(archive, str(work / "work" / "code"))
    message = str(raised.value)
    assert message.startswith(f"refusing to extract {archive}: member 'bbbb"), message
    assert ("(10054 characters) has a path of 10054 bytes (at most 3584 are allowed, leaving room for the "
            "destination's own path below the kernel's limit of 4096); ") in message
    assert "disk space" not in message and len(message) < 600
    os.remove(archive)
    _assert_untouched(work)


def test_path_too_long_below_a_long_destination_says_so(tmp_path):
    """A member within the limit below a destination so deep that together they pass PATH_MAX."""
    dest = tmp_path.joinpath(*["d" * 250] * 3, "code")
    name = "/".join(["b" * 250] * 14) + "/x.py"  # 3508 bytes: within the policy's limit
    archive = _write_tar(tmp_path / "s.tar.gz", [_file(name)])
    with pytest.raises(ClientError) as raised:
        archives.extract_tarball(archive, str(dest))
    message = str(raised.value)
    assert message.startswith(f"cannot extract {archive}: File name too long (member 'bbbb"), message
    assert message.endswith(f" below {dest}: extract it to a shorter destination, or shorten the member's path.")
    assert not dest.exists() or not os.listdir(dest)


def test_extraction_is_tarfiles_own_under_the_data_filter_and_the_policy(plain_work, monkeypatch):
    """Every member goes through tarfile.data_filter (PEP 706) after the project's policy; the
    policy's refusal comes first, with its own message."""
    seen = []
    real = tarfile.data_filter

    def spy(member, dest):
        seen.append(member.name)
        return real(member, dest)

    monkeypatch.setattr(tarfile, "data_filter", spy)
    archive = _write_tar(plain_work / "in" / "s.tar.gz", [_dir("lib"), _file("lib/util.py", b"u"), _file("train.py")])
    archives.extract_tarball(archive, str(plain_work / "work" / "code"))
    assert seen == ["lib", "lib/util.py", "train.py"]
    assert (plain_work / "work" / "code" / "lib" / "util.py").read_bytes() == b"u"
    seen.clear()
    bad = _write_tar(plain_work / "in" / "bad.tar.gz", [_file("train.py"), _entry("hard", tarfile.LNKTYPE, "train.py")])
    with pytest.raises(ClientError, match="member 'hard' is a hard link"):
        archives.extract_tarball(bad, str(plain_work / "work" / "code"))
    assert seen == []  # the policy refused it while checking every header, before anything was extracted
