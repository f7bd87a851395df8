"""Entry points and requirements, through a real ``train``.

A ``.py`` script, a shell script, an executable, an installable package run as
a module; requirements.txt (or ``sagemaker_requirements``) installed with pip;
clear ClientErrors when the entry point is missing or unset.
"""

from __future__ import annotations

import json
import os
import sys
import sysconfig
import textwrap

import pytest

from helpers import read_failure, run_train, write_base_dir
from sagemaker_training.host import entry_point
from sagemaker_training.errors import UserError

RAN = """
    import json, os, sys
    with open(os.path.join(os.environ["SM_MODEL_DIR"], "ran.json"), "w") as f:
        json.dump({"argv": sys.argv, "file": __file__, "name": __name__}, f)
"""


def _ran(base: str) -> dict | None:
    path = os.path.join(base, "model", "ran.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def test_python_script_in_a_subdirectory(tmp_path):
    base = write_base_dir(tmp_path, {"epochs": "2"}, program="src/train.py", code={"src/train.py": RAN})
    result = run_train(base)
    assert result.returncode == 0, result.stderr
    ran = _ran(base)
    assert ran["name"] == "__main__"
    assert ran["file"] == os.path.join(base, "code", "src", "train.py")
    assert ran["argv"][1:] == ["--epochs", "2"]


def test_shell_script(tmp_path):
    base = write_base_dir(tmp_path, {"epochs": "2", "comment": "two words"}, program="train.sh", code={
        "train.sh": """
            # no shebang and no execute bit: run with /bin/sh
            printf '%s|' "$@" > "$SM_MODEL_DIR/args"
            echo "$SM_CURRENT_HOST $(pwd)" > "$SM_MODEL_DIR/where"
            echo "shell says hello"
        """})
    result = run_train(base)
    assert result.returncode == 0, result.stderr
    with open(os.path.join(base, "model", "args")) as f:
        assert f.read() == "--comment|two words|--epochs|2|"  # sorted by name
    with open(os.path.join(base, "model", "where")) as f:
        assert f.read().split() == ["algo-1", os.path.join(base, "code")]
    assert "shell says hello" in result.stdout


def test_failing_shell_script(tmp_path):
    base = write_base_dir(tmp_path, program="train.sh", code={"train.sh": "echo 'no GPU found' >&2\nexit 5\n"})
    result = run_train(base)
    assert result.returncode == 5
    failure = read_failure(base)
    assert failure.startswith("UserError: train.sh exited with code 5")
    assert "no GPU found" in failure


def test_executable_with_a_shebang(tmp_path):
    base = write_base_dir(tmp_path, {"n": "1"}, program="train", code={
        "train": "#!/bin/sh\nprintf '%s ' \"$@\" > \"$SM_MODEL_DIR/args\"\n"})
    os.chmod(os.path.join(base, "code", "train"), 0o755)
    result = run_train(base)
    assert result.returncode == 0, result.stderr
    with open(os.path.join(base, "model", "args")) as f:
        assert f.read() == "-n 1 "  # a one-letter name is -n, as sagemaker-training writes it


def test_installable_package_runs_as_a_module(tmp_path):
    """The submit dir is a package (src layout, so only the install makes it
    importable): pip installs it, then ``python -m`` runs the entry point."""
    prefix = str(tmp_path / "prefix")  # pip installs here, not into the test environment
    site = sysconfig.get_path("purelib", vars={"base": prefix, "platbase": prefix})
    base = write_base_dir(tmp_path / "job", {"epochs": "3"}, program="smt_tinypkg.train", code={
        "pyproject.toml": """
            [build-system]
            requires = ["setuptools>=61"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "smt-tinypkg"
            version = "0.0.1"

            [tool.setuptools.packages.find]
            where = ["src"]
        """,
        "src/smt_tinypkg/__init__.py": "",
        "src/smt_tinypkg/train.py": textwrap.dedent(RAN) + textwrap.dedent("""
            from importlib import metadata
            with open(os.path.join(os.environ["SM_MODEL_DIR"], "version"), "w") as f:
                f.write(metadata.version("smt-tinypkg"))
        """),
    })
    result = run_train(base, {"PIP_PREFIX": prefix, "PYTHONPATH": site}, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    ran = _ran(base)
    assert ran["name"] == "__main__"
    assert ran["file"].startswith(site)  # the installed copy, not the code dir
    assert ran["argv"][1:] == ["--epochs", "3"]
    with open(os.path.join(base, "model", "version")) as f:
        assert f.read() == "0.0.1"
    assert "installing the submit directory as a package" in result.stderr


def test_missing_entry_point_lists_the_submit_dir(tmp_path):
    base = write_base_dir(tmp_path, program="trian.py", code={"train.py": RAN, "utils.py": ""})
    result = run_train(base)
    assert result.returncode != 0
    failure = read_failure(base)
    assert failure.count("\n") == 1
    assert failure.startswith("ClientError: entry point 'trian.py' is not in the submit directory")
    assert "train.py, utils.py" in failure
    assert "check sagemaker_program" in failure


def test_sagemaker_program_unset(tmp_path):
    base = write_base_dir(tmp_path, {"epochs": "1"}, code={"train.py": RAN})
    result = run_train(base)
    assert result.returncode != 0
    assert read_failure(base).startswith("ClientError: hyperparameter sagemaker_program is not set")
    assert _ran(base) is None


def test_program_outside_the_code_dir(tmp_path):
    base = write_base_dir(tmp_path, program="../outside.py", code={"train.py": RAN})
    with open(os.path.join(base, "outside.py"), "w") as f:
        f.write("open('escaped', 'w').close()\n")
    result = run_train(base)
    assert result.returncode != 0
    assert "points outside the code directory" in read_failure(base).splitlines()[0]
    assert not os.path.exists(os.path.join(base, "escaped"))


def test_no_code_at_all(tmp_path):
    base = write_base_dir(tmp_path, program="train.py")
    result = run_train(base)
    assert result.returncode != 0
    head = read_failure(base).splitlines()[0]
    assert head.startswith("ClientError: hyperparameter sagemaker_submit_directory is not set")


# ---------------------------------------------------------------------------
# requirements.txt


def test_failing_requirements_are_a_user_error_with_pip_lines(tmp_path):
    base = write_base_dir(tmp_path, program="train.py", code={
        "train.py": RAN,
        "requirements.txt": "# needs a local wheel that is not there\n./vendor/not-there\n",
    })
    result = run_train(base, timeout=120)
    assert result.returncode != 0
    failure = read_failure(base)
    head = failure.splitlines()[0]
    assert head.startswith("UserError: installing requirements.txt failed (pip exit code")
    assert "pip's last lines follow" in head
    assert "./vendor/not-there" in failure  # pip's own words, after the headline
    assert _ran(base) is None
    assert "not-there" in result.stderr  # pip's output streams to the log


@pytest.mark.parametrize("text", ["", "# nothing to install\n\n"], ids=["empty", "comments"])
def test_empty_requirements_succeed(tmp_path, text):
    base = write_base_dir(tmp_path, program="train.py", code={"train.py": RAN, "requirements.txt": text})
    result = run_train(base, timeout=120)
    assert result.returncode == 0, result.stderr
    assert _ran(base) is not None
    assert "installed requirements.txt" in result.stderr


def test_sagemaker_requirements_names_another_file(tmp_path):
    base = write_base_dir(tmp_path, {"sagemaker_requirements": "\"deps/train-requirements.txt\""},
                          program="train.py", code={
                              "train.py": RAN,
                              "requirements.txt": "./would/fail\n",  # not the file named: ignored
                              "deps/train-requirements.txt": "# all in the image already\n",
                          })
    result = run_train(base, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "installed deps/train-requirements.txt" in result.stderr

    with open(os.path.join(base, "code", "deps", "train-requirements.txt"), "w") as f:
        f.write("./missing/dependency\n")
    result = run_train(base, timeout=120)
    assert result.returncode != 0
    failure = read_failure(base)
    assert failure.startswith("UserError: installing deps/train-requirements.txt failed")
    assert "./missing/dependency" in failure


@pytest.mark.parametrize("where", ["absolute", "dotdot", "symlink"])
def test_requirements_outside_the_code_dir_are_refused(tmp_path, where):
    outside = tmp_path / "outside-requirements.txt"
    outside.write_text("./would/be/installed\n")
    name = {"absolute": str(outside), "dotdot": "../../outside-requirements.txt", "symlink": "deps.txt"}[where]
    base = write_base_dir(tmp_path / "job", {"sagemaker_requirements": json.dumps(name)}, program="train.py",
                          code={"train.py": RAN})
    if where == "symlink":
        os.symlink(str(outside), os.path.join(base, "code", "deps.txt"))
    result = run_train(base)
    assert result.returncode == 1
    assert read_failure(base) == (f"ClientError: sagemaker_requirements {name!r} is outside the code directory: "
                                  "name a file of the submit directory, relative to it (e.g. \"requirements.txt\").\n")
    assert "would/be/installed" not in result.stderr  # pip never ran on it
    assert _ran(base) is None


def test_named_requirements_that_are_missing_are_an_error(tmp_path):
    # the default requirements.txt may be missing; a file named by sagemaker_requirements may not
    base = write_base_dir(tmp_path, {"sagemaker_requirements": "\"deps/extra.txt\""}, program="train.py",
                          code={"train.py": RAN})
    result = run_train(base)
    assert result.returncode == 1
    assert read_failure(base) == ("ClientError: sagemaker_requirements 'deps/extra.txt' is not in the submit "
                                  "directory (it holds: train.py): check the name or add the file.\n")
    assert _ran(base) is None


def test_program_symlink_to_a_file_outside_the_code_dir_is_refused(tmp_path):
    outside = tmp_path / "tool.py"
    outside.write_text("open('escaped', 'w').close()\n")
    base = write_base_dir(tmp_path / "job", program="train.py", code={"other.py": ""})
    os.symlink(str(outside), os.path.join(base, "code", "train.py"))
    result = run_train(base)
    assert result.returncode == 1
    assert read_failure(base) == (f"ClientError: sagemaker_program 'train.py' is a symbolic link to {outside}, "
                                  "outside the code directory: ship the entry point itself in the submit "
                                  "directory.\n")
    assert not os.path.exists(os.path.join(base, "code", "escaped"))


def test_program_symlink_inside_the_code_dir_runs(tmp_path):
    base = write_base_dir(tmp_path, program="train.py", code={"src/real.py": RAN})
    os.symlink("src/real.py", os.path.join(base, "code", "train.py"))
    result = run_train(base)
    assert result.returncode == 0, result.stderr
    assert _ran(base) is not None


# ---------------------------------------------------------------------------
# Pure helpers


def test_command_for_each_kind(tmp_path):
    code = str(tmp_path)
    for name in ("a.py", "b.sh", "tool"):
        (tmp_path / name).write_text("")
    os.chmod(tmp_path / "tool", 0o755)
    assert entry_point.command(code, "a.py", ["--x", "1"], python="py") == ["py", os.path.join(code, "a.py"),
                                                                             "--x", "1"]
    assert entry_point.command(code, "b.sh", [], python="py") == ["/bin/sh", os.path.join(code, "b.sh")]
    assert entry_point.command(code, "tool", [], python="py") == [os.path.join(code, "tool")]
    assert entry_point.command(code, "pkg/mod.py", [], python="py") == ["py", "-m", "pkg.mod"]
    assert entry_point.command(code, "pkg.mod", ["--a", "b"], python="py") == ["py", "-m", "pkg.mod", "--a", "b"]


def test_defines_top_level(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("import os\nfrom x import train as t\ndef model_fn(): pass\nif True:\n    def hidden(): pass\n"
                    "keras_model_fn = None\n")
    assert entry_point.defines_top_level(str(path), ["model_fn", "hidden", "t", "keras_model_fn", "os", "nope"]) == {
        "model_fn", "t", "keras_model_fn", "os"}
    path.write_text("def broken(:\n")
    assert entry_point.defines_top_level(str(path), ["broken"]) == set()


def test_pip_output_is_redacted(tmp_path):
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
    base = write_base_dir(tmp_path, program="train.py", code={
        "train.py": RAN, "requirements.txt": f"./vendor/{secret}/pkg\n"})
    result = run_train(base, {"AWS_SECRET_ACCESS_KEY": secret}, timeout=120)
    assert result.returncode != 0
    assert "./vendor/****/pkg" in result.stderr  # pip's line is there, without the key
    assert secret not in result.stderr + result.stdout + read_failure(base)


def test_pip_output_is_read_in_bounded_memory_and_delivered_in_pieces(tmp_path, monkeypatch):
    """pip's output goes through the one bounded reader (supervision.streams): a line of 64 MiB
    with no newline is written out whole, in pieces, and neither it nor the tail is held."""
    from helpers import LONG_LINE_MIB, CountingSink, long_line_writer, peak_python_memory
    from sagemaker_training.supervision import streams

    sink = CountingSink()
    monkeypatch.setattr(sys, "stderr", sink)
    argv = long_line_writer("stdout", then="\nERROR: no matching distribution", code=1)
    error, peak = peak_python_memory(lambda: entry_point._pip(argv, str(tmp_path), "installing requirements.txt"))
    assert isinstance(error, UserError)
    assert peak < 4 * 2**20, f"{peak / 2**20:.1f} MiB held while reading"
    assert sink.chars == LONG_LINE_MIB * 2**20 + len("\nERROR: no matching distribution\n")
    assert sink.writes >= LONG_LINE_MIB * 2**20 // streams.PIECE_CHARS
    assert sink.largest <= streams.PIECE_CHARS + 1
    assert "ERROR: no matching distribution" in error.message
    details = error.details.splitlines()
    assert details[0] == "z" * streams.TAIL_LINE_CHARS + f" [... {LONG_LINE_MIB * 2**20 - 500} more characters]"
    assert details[-1] == "ERROR: no matching distribution"


@pytest.mark.parametrize("source", ["total = a" + " + a" * 200_000 + "\n", "x = " + "-" * 100_000 + "1\n"])
def test_reading_a_module_the_parser_cannot_take_raises_nothing(tmp_path, source):
    """A module nested beyond the parser (RecursionError) or too big for it (MemoryError): the syntax-tree
    readers the supervisor runs on user code (top-level names, the Python 2 check) answer 'nothing found';
    running it is the child's business, where its error is the user's."""
    path = tmp_path / "generated.py"
    path.write_text(source)
    assert entry_point.defines_top_level(str(path), ["train"]) == set()
    assert entry_point.python2_error(str(path)) is None
