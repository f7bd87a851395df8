"""staging.py's swap of a directory when the destination cannot be renamed the way overlayfs
refuses it (EXDEV: a directory of a lower image layer). Docker's overlayfs itself is in
tests/test_docker.py; here ``os.rename`` of the destination raises what overlayfs raises."""

from __future__ import annotations

import errno
import os
import subprocess

import pytest

from sagemaker_training.archives import staging
from sagemaker_training.errors import ClientError


@pytest.fixture
def overlay_dest(tmp_path, monkeypatch):
    """A destination with old content that, like a lower-layer directory, cannot be renamed."""
    dest = tmp_path / "code"
    (dest / "pkg").mkdir(parents=True)
    (dest / "pkg" / "old.py").write_text("old\n")
    (dest / "train.py").write_text("print('baked in')\n")
    real = os.rename

    def rename(src, dst, *args, **kwargs):
        if os.path.abspath(src) == str(dest):
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), str(src))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "rename", rename)
    return dest


def test_a_directory_that_cannot_be_renamed_gets_its_content_replaced(tmp_path, overlay_dest):
    with staging.staged_directory(str(overlay_dest)) as staged:
        os.mkdir(os.path.join(staged, "pkg"))
        with open(os.path.join(staged, "pkg", "new.py"), "w") as f:
            f.write("new\n")
        with open(os.path.join(staged, "train.py"), "w") as f:
            f.write("print('the job')\n")
    assert sorted(os.listdir(overlay_dest)) == ["pkg", "train.py"]
    assert os.listdir(overlay_dest / "pkg") == ["new.py"]
    assert (overlay_dest / "train.py").read_text() == "print('the job')\n"
    assert os.listdir(tmp_path) == ["code"]  # no staging dir or graveyard left beside it


def test_a_failed_build_leaves_such_a_directory_as_it_was(tmp_path, overlay_dest):
    with pytest.raises(RuntimeError), staging.staged_directory(str(overlay_dest)) as staged:
        with open(os.path.join(staged, "train.py"), "w") as f:
            f.write("half\n")
        raise RuntimeError("the download broke")
    assert sorted(os.listdir(overlay_dest)) == ["pkg", "train.py"]
    assert (overlay_dest / "train.py").read_text() == "print('baked in')\n"
    assert os.listdir(tmp_path) == ["code"]


def test_such_a_directory_holding_a_mount_is_refused_untouched(tmp_path, overlay_dest):
    project = tmp_path / "project"
    project.mkdir()
    (project / "mine.txt").write_text("mine\n")
    result = subprocess.run(["mount", "--bind", str(project), str(overlay_dest / "pkg")], capture_output=True,
                            text=True)
    if result.returncode != 0:
        pytest.skip(f"mount --bind is not permitted here: {result.stderr.strip()}")
    try:
        with pytest.raises(ClientError, match="cannot be replaced"), \
                staging.staged_directory(str(overlay_dest)) as staged:
            with open(os.path.join(staged, "train.py"), "w") as f:
                f.write("print('the job')\n")
        assert sorted(os.listdir(overlay_dest)) == ["pkg", "train.py"]
        assert (overlay_dest / "train.py").read_text() == "print('baked in')\n"
        assert os.listdir(overlay_dest / "pkg") == ["mine.txt"]
    finally:
        subprocess.run(["umount", str(overlay_dest / "pkg")], check=False)
    assert os.listdir(project) == ["mine.txt"]
