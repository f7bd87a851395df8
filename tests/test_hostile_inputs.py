"""Bad, hostile and unlucky inputs to a real ``train``.

Each case runs the installed entrypoint on a base dir as the platform (or a
tired user, or an attacker) would leave it, and pins what must happen: a
one-line ClientError saying what to fix and nothing run, or a job that runs
without losing anyone's files or printing anyone's secrets.
"""

from __future__ import annotations

import json
import os
import subprocess
import tarfile

import pytest

from helpers import read_failure, run_train, succeeded, write_base_dir
from sagemaker_training.errors import Redactor, is_secret_name

MARK = "open('ran', 'w').close()\n"


def _config(base: str, name: str, content) -> None:
    data = content if isinstance(content, bytes) else json.dumps(content).encode()
    with open(os.path.join(base, "input", "config", name), "wb") as f:
        f.write(data)


def _refused(base: str, expected: str, env: dict | None = None) -> None:
    result = run_train(base, env)
    assert result.returncode == 1, result.stderr
    assert read_failure(base) == expected + "\n"
    assert expected in result.stderr  # the log says it too
    assert not os.path.exists(os.path.join(base, "code", "ran"))
    assert not succeeded(base)


# --------------------------------------------------------------------------
# Inputs outside the contract: each a ClientError that says what to fix

PROGRAM = {"sagemaker_program": "\"train.py\""}
CHANNEL = {"TrainingInputMode": "File"}
WHAT_TO_FIX = "(empty, '.', '..', or holding '/', '=' or NUL): rename the channel, e.g. \"training\"."

HOSTILE = {
    "non-utf8-config": ("hyperparameters.json", b'{"a": "\xff\xfe"}',
                        "input/config/hyperparameters.json is not UTF-8 text (byte 0xff at offset 7): "
                        "save the file as UTF-8."),
    "deep-config": ("inputdataconfig.json", b"[" * 100_000 + b"]" * 100_000,
                    "input/config/inputdataconfig.json nests JSON more than 100 levels deep: flatten the file."),
    "deep-hyperparameter": ("hyperparameters.json", {**PROGRAM, "layers": "[" * 1200 + "]" * 1200},
                            "hyperparameter 'layers' is JSON nested more than 100 levels deep: flatten its value."),
    "nul-in-hyperparameter-value": ("hyperparameters.json", {**PROGRAM, "note": "a\x00b"},
                                    "input/config/hyperparameters.json has a NUL character in 'a\\x00b': remove it."),
    "nul-in-json-hyperparameter": ("hyperparameters.json", {**PROGRAM, "note": "[\"a\\u0000b\"]"},
                                   "input/config/hyperparameters.json has a NUL character in 'a\\x00b': remove it."),
    "nul-in-hyperparameter-name": ("hyperparameters.json", {**PROGRAM, "a\x00b": "1"},
                                   "hyperparameter name 'a\\x00b' holds a NUL character, which no environment "
                                   "variable name can: rename the hyperparameter."),
    "equals-in-hyperparameter-name": ("hyperparameters.json", {**PROGRAM, "lr=0.1": "1"},
                                      "hyperparameter name 'lr=0.1' holds =, which no environment variable name "
                                      "can: rename the hyperparameter."),
    "nul-in-channel-value": ("inputdataconfig.json", {"training": {"ContentType": "text\x00csv"}},
                             "input/config/inputdataconfig.json has a NUL character in 'text\\x00csv': remove it."),
    "nul-in-channel-name": ("inputdataconfig.json", {"tr\x00ain": CHANNEL},
                            "input/config/inputdataconfig.json has a NUL character in 'tr\\x00ain': remove it."),
    "program-number": ("hyperparameters.json", {"sagemaker_program": "3"},
                       "hyperparameter sagemaker_program must be a string (a file, module or location name), not "
                       "int 3: set it to a name such as \"train.py\"."),
    "program-list": ("hyperparameters.json", {"sagemaker_program": "[\"a.py\", \"b.py\"]"},
                     "hyperparameter sagemaker_program must be a string (a file, module or location name), not "
                     "list [\"a.py\", \"b.py\"]: set it to a name such as \"train.py\"."),
    "program-dict": ("hyperparameters.json", {"sagemaker_program": "{\"file\": \"a.py\"}"},
                     "hyperparameter sagemaker_program must be a string (a file, module or location name), not "
                     "dict {\"file\": \"a.py\"}: set it to a name such as \"train.py\"."),
}


for _case, _name in {"equals-in-channel-name": "a=b", "dotdot-channel": "..", "dot-channel": ".", "slash-channel": "/",
                     "nested-slash-channel": "a/../../b", "empty-channel": ""}.items():
    HOSTILE[_case] = ("inputdataconfig.json", {_name: CHANNEL}, "input/config/inputdataconfig.json: channel name "
                      f"{_name!r} is not usable as a directory and variable name {WHAT_TO_FIX}")


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_input_outside_the_contract_is_a_one_line_client_error(tmp_path, case):
    name, content, expected = HOSTILE[case]
    base = write_base_dir(tmp_path, program="train.py", code={"train.py": MARK})
    _config(base, name, content)
    _refused(base, f"ClientError: {expected}")


# --------------------------------------------------------------------------
# Everything the API accepts runs: 100 hyperparameters of 2,500 characters

MANY = """
    import json, os, sys
    from sagemaker_training import environment
    env = environment.Environment()
    seen = {
        "argc": len(sys.argv) - 1,
        "first": sys.argv[1:3],
        "hp": os.environ["SM_HP_HP_07"],
        "aggregates": sorted(k for k in ("SM_HPS", "SM_USER_ARGS", "SM_TRAINING_ENV") if k in os.environ),
        "from_files": len(env.hyperparameters),
    }
    with open(os.path.join(os.environ["SM_MODEL_DIR"], "seen.json"), "w") as f:
        json.dump(seen, f)
"""


@pytest.mark.parametrize("count", [60, 100])
def test_hyperparameters_at_the_api_limits_run(tmp_path, count):
    hps = {f"hp_{i:02d}": "v" * 2490 + f"{i:010d}" for i in range(count)}
    base = write_base_dir(tmp_path, hps, program="train.py", code={"train.py": MANY})
    result = run_train(base)
    assert result.returncode == 0, result.stderr
    with open(os.path.join(base, "model", "seen.json")) as f:
        seen = json.load(f)
    assert seen == {"argc": 2 * count, "first": ["--hp_00", hps["hp_00"]], "hp": hps["hp_07"],
                    "aggregates": [], "from_files": count}
    for name in ("SM_HPS", "SM_USER_ARGS", "SM_TRAINING_ENV"):
        assert f"{name} is not set: it would be" in result.stderr
        assert "over the kernel's limit of 131072 bytes for one environment variable (MAX_ARG_STRLEN)" in result.stderr


def test_a_value_the_kernel_cannot_pass_is_a_client_error_naming_the_limit(tmp_path):
    base = write_base_dir(tmp_path, {"big": "x" * 140_000}, program="train.py", code={"train.py": MARK})
    _refused(base, "ClientError: SM_HP_BIG would be 140011 bytes, over the kernel's limit of 131072 bytes for one "
                   "environment variable (MAX_ARG_STRLEN): shorten the value or pass it in a file (a channel).")


def test_arguments_past_arg_max_are_a_client_error_naming_the_limit(tmp_path):
    base = write_base_dir(tmp_path, {f"hp_{i}": "x" * 100_000 for i in range(12)}, program="train.py",
                          code={"train.py": MARK})
    result = run_train(base)
    assert result.returncode == 1
    failure = read_failure(base)
    assert failure.startswith("ClientError: the entry point's arguments and environment are "), failure
    assert failure.endswith(f"bytes, over the kernel's limit of {os.sysconf('SC_ARG_MAX')} bytes (ARG_MAX): send "
                            "fewer or shorter hyperparameters, or pass them in a file (a channel).\n"), failure
    assert not os.path.exists(os.path.join(base, "code", "ran"))


# --------------------------------------------------------------------------
# Secrets: the user gets them, nobody else sees them

SECRETS = {"aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG", "db_password": "hunter22", "hf_token": "hf_abcdefgh",
           "api_secret_phrase": "correct horse battery"}

TELLS = """
    import os, sys
    args = sys.argv[1:]
    got = {name: args[args.index("--" + name) + 1] for name in %r}
    assert got == %r, "argv lacks the real values"
    assert os.environ["SM_HP_DB_PASSWORD"] == "hunter22", "SM_HP_* lacks the real values"
    print("argv:", sys.argv)
    print("SM_HPS:", os.environ["SM_HPS"], file=sys.stderr)
    print("endpoint:", os.environ["AWS_ENDPOINT_URL"])
    raise RuntimeError("login with hunter22 and hf_abcdefgh failed for " + os.environ["AWS_ENDPOINT_URL"])
""" % (sorted(SECRETS), SECRETS)


def test_secret_hyperparameters_and_url_passwords_are_redacted_everywhere(tmp_path):
    base = write_base_dir(tmp_path, {**SECRETS, "epochs": "3"}, program="train.py", code={"train.py": TELLS})
    result = run_train(base, {"AWS_ENDPOINT_URL": "http://user:endpointpass@127.0.0.1:9"})
    assert result.returncode == 1
    failure = read_failure(base)
    # the asserts passed (the script got the real values), then the RuntimeError: redacted
    assert failure.startswith("UserError: train.py exited with code 1: RuntimeError: login with **** and **** failed "
                              "for http://user:****@127.0.0.1:9. Fix the training code"), failure
    text = result.stdout + result.stderr + failure
    for secret in (*SECRETS.values(), "endpointpass"):
        assert secret not in text
    assert "'--db_password', '****'" in result.stdout and "'--epochs', '3'" in result.stdout
    assert '"hf_token":"****"' in result.stderr


@pytest.mark.parametrize("name, secret", [
    ("aws_secret_access_key", True), ("DB_PASSWORD", True), ("my_passwd", True), ("hf_token", True),
    ("AWS_SESSION_TOKEN", True), ("token", True), ("client_secret_id", True), ("openai_api_key", True),
    ("credentials", True), ("AWS_ACCESS_KEY_ID", False), ("max_tokens", False), ("tokenizer", False),
    ("epochs", False), ("keyboard", False),
    # word parts (issue 21): PASS, PWD, PAT, KEY, TOKEN, PRIVATE, CREDENTIAL as a part of the name
    ("DB_PASS", True), ("pwd", True), ("GITHUB_PAT", True), ("githubPat", True), ("access_key", True),
    ("PRIVATE_KEY_PEM", True), ("dbPassword", True), ("MY_PASSPHRASE", True), ("gcp_creds", True),
    ("SM_HP_DB_PASS", True), ("hftoken", True),
    ("PATH", False), ("KEYBOARD", False), ("patience", False), ("num_passes", False), ("kms_key_id", False),
    ("PWD", False), ("OLDPWD", False),  # the shell's working directory, in every environment
    ("KeyError", False), ("TokenError", False), ("PasswordWarning", False),  # exceptions: "KeyError: 'label'"
])
def test_secret_names(name, secret):
    assert is_secret_name(name) is secret


@pytest.mark.parametrize("text, shown", [
    ("--db_password hunter", "--db_password ****"),
    ("['--db_password', 'hunter', '--epochs', '3']", "['--db_password', '****', '--epochs', '3']"),
    ('["--hf_token","abc"]', '["--hf_token","****"]'),
    ("SM_HP_DB_PASSWORD=abc other", "SM_HP_DB_PASSWORD=**** other"),
    ('{"db_password": "abc"}', '{"db_password": "****"}'),
    ("https://me:pw@example.com/x", "https://me:****@example.com/x"),
    ("max_tokens=512 tokenizer=bert", "max_tokens=512 tokenizer=bert"),  # not secrets: the log stays useful
    ("GITHUB_PAT=ghp_x PATH=/usr/bin", "GITHUB_PAT=**** PATH=/usr/bin"),
    ("--db_pass=xyz --epochs=3", "--db_pass=**** --epochs=3"),
    ("DATABASE_URL=postgres://u:pw@h/db", "DATABASE_URL=postgres://u:****@h/db"),
])
def test_redaction_by_name_beside_the_value(text, shown):
    assert Redactor({})(text) == shown


def test_redaction_of_secret_environment_values_wherever_they_appear():
    redact = Redactor({"GITHUB_TOKEN": "ghp_abcdef123", "USE_AUTH_TOKEN": "true", "PORT_SECRET": "8080",
                       "AWS_ENDPOINT_URL": "http://u:longpassword@host"})
    assert redact("ghp_abcdef123 and longpassword") == "**** and ****"
    assert redact("true 8080") == "true 8080"  # booleans and numbers are only redacted beside their name


# --------------------------------------------------------------------------
# Nobody's files lost: a code dir that is someone else's


def _project(tmp_path):
    """The user's own project directory, mounted or linked as the code dir."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "train.py").write_text(MARK)
    (project / "notes.txt").write_text("my own notes\n")
    other = tmp_path / "other"
    other.mkdir()
    (other / "train.py").write_text("raise SystemExit('the other code ran')\n")
    return project, other


def _bind_mount(source, target):
    result = subprocess.run(["mount", "--bind", str(source), str(target)], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"mount --bind is not permitted here: {result.stderr.strip()}")


@pytest.mark.parametrize("where", ["code", "code/sub"])
def test_bind_mounted_code_dir_is_never_emptied(tmp_path, where):
    """The code dir, or a directory inside it, is someone's mounted project."""
    project, other = _project(tmp_path)
    base = write_base_dir(tmp_path / "base", {"sagemaker_submit_directory": json.dumps(str(other))},
                          program="train.py")
    code = os.path.join(base, "code")
    mount = os.path.join(base, where)
    os.makedirs(mount)
    _bind_mount(project, mount)
    why = "is a mount point" if mount == code else f"has a mount point inside it ({mount})"
    try:
        result = run_train(base)
        assert result.returncode == 1, result.stderr
        assert read_failure(base) == (
            f"ClientError: the code directory {code} {why}, so its files are not the toolkit's to "
            f"replace, and sagemaker_submit_directory names other code ({other}): unset sagemaker_submit_directory "
            "to run the code that is there, or mount it somewhere else.\n")
        assert sorted(os.listdir(project)) == sorted(os.listdir(mount)) == ["notes.txt", "train.py"]
        assert (project / "notes.txt").read_text() == "my own notes\n"
        assert not [name for name in os.listdir(base) if name.startswith(".code.")]

        if mount == code:  # the SDK's local mode: sagemaker_submit_directory is the mounted code dir itself
            _config(base, "hyperparameters.json", {"sagemaker_submit_directory": json.dumps(code),
                                                   "sagemaker_program": "\"train.py\""})
            result = run_train(base)
            assert result.returncode == 0, result.stderr
            assert sorted(os.listdir(project)) == ["notes.txt", "ran", "train.py"]
    finally:
        subprocess.run(["umount", mount], check=True)


def test_replacing_a_directory_never_deletes_below_a_mount_point(tmp_path):
    """staging's discard of the old tree stops at a bind mount (same file
    system) and at another file system (a tmpfs): their files stay."""
    from sagemaker_training.archives import staging

    project, _ = _project(tmp_path)
    dest = tmp_path / "dest"
    (dest / "bound").mkdir(parents=True)
    (dest / "tmpfs").mkdir()
    (dest / "plain.txt").write_text("old\n")
    _bind_mount(project, dest / "bound")
    mounted = [dest / "bound"]
    try:
        result = subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(dest / "tmpfs")], capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"mount -t tmpfs is not permitted here: {result.stderr.strip()}")
        mounted.append(dest / "tmpfs")
        (dest / "tmpfs" / "theirs.txt").write_text("theirs\n")
        with staging.staged_directory(str(dest)) as staged:
            with open(os.path.join(staged, "new.txt"), "w") as f:
                f.write("new\n")
        assert sorted(os.listdir(dest)) == ["new.txt"]
        assert sorted(os.listdir(project)) == ["notes.txt", "train.py"]
        (graveyard,) = [name for name in os.listdir(tmp_path) if name.startswith(".dest.old-")]
        old = tmp_path / graveyard / "old"
        assert sorted(os.listdir(old)) == ["bound", "tmpfs"]  # plain.txt went; the mounts were left
        assert (old / "tmpfs" / "theirs.txt").read_text() == "theirs\n"
        assert sorted(os.listdir(old / "bound")) == ["notes.txt", "train.py"]
        mounted = [old / "bound", old / "tmpfs"]
    finally:
        for path in reversed(mounted):
            subprocess.run(["umount", str(path)], check=False)


def test_symlinked_code_dir_keeps_its_target(tmp_path):
    project, other = _project(tmp_path)
    base = write_base_dir(tmp_path / "base", {"sagemaker_submit_directory": json.dumps(str(other))},
                          program="train.py")
    code = os.path.join(base, "code")
    os.symlink(str(project), code)
    result = run_train(base)
    assert result.returncode == 1, result.stderr
    assert read_failure(base).startswith(f"ClientError: the code directory {code} is a symbolic link to {project}, "
                                         "so its files are not the toolkit's to replace")
    assert sorted(os.listdir(project)) == ["notes.txt", "train.py"]
    assert os.readlink(code) == str(project)


# --------------------------------------------------------------------------
# A re-run in the same base dir starts clean

RERUN = """
    import os, sys
    model, output = os.environ["SM_MODEL_DIR"], os.environ["SM_OUTPUT_DIR"]
    stale = sorted(os.listdir(model)) + sorted(os.listdir(os.path.join(output, "data")))
    stale += [name for name in ("success", "failure") if os.path.exists(os.path.join(output, name))]
    if stale:
        sys.exit(f"stale: {stale}")
    for directory in (model, os.path.join(output, "data")):
        with open(os.path.join(directory, os.environ["SM_HP_RUN"] + ".txt"), "w") as f:
            f.write("x")
"""


def test_a_rerun_does_not_see_the_previous_runs_results(tmp_path):
    base = write_base_dir(tmp_path, {"run": "one"}, program="train.py", code={"train.py": RERUN})
    assert run_train(base).returncode == 0
    assert os.listdir(os.path.join(base, "model")) == ["one.txt"]
    _config(base, "hyperparameters.json", {"run": "two", "sagemaker_program": "\"train.py\""})
    result = run_train(base)
    assert result.returncode == 0, read_failure(base)
    assert os.listdir(os.path.join(base, "model")) == ["two.txt"]
    assert os.listdir(os.path.join(base, "output", "data")) == ["two.txt"]
    assert "removing the report and artifacts of a previous run" in result.stderr


def test_a_fresh_base_dir_keeps_what_is_in_model(tmp_path):
    """No report of an earlier run: model/ is the platform's, left as it is."""
    base = write_base_dir(tmp_path, {"run": "one"}, program="train.py", code={"train.py": MARK})
    os.makedirs(os.path.join(base, "model"))
    with open(os.path.join(base, "model", "given.txt"), "w") as f:
        f.write("x")
    assert run_train(base).returncode == 0
    assert os.listdir(os.path.join(base, "model")) == ["given.txt"]


# --------------------------------------------------------------------------
# A long member name does not push the cause out of FailureReason


@pytest.mark.parametrize("name, cause", [
    ("a" * 10_000 + ".py", "has a path component of 10003 bytes (file systems allow 255)"),
    ("/".join(["b" * 200] * 50) + "/x.py", "has a path of 10054 bytes (at most 3584 are allowed"),
])
def test_long_member_names_leave_the_cause_in_the_failure_reason(tmp_path, name, cause):
    src = tmp_path / "train.py"
    src.write_text(MARK)
    archive = tmp_path / "sourcedir.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src, "train.py")
        tar.add(src, name)
    base = write_base_dir(tmp_path / "base", {"sagemaker_submit_directory": json.dumps(str(archive))},
                          program="train.py")
    result = run_train(base)
    assert result.returncode == 1
    reason = read_failure(base)[:1024]  # what the platform shows as FailureReason
    assert reason.startswith("ClientError: ") and cause in reason, reason
    assert not os.path.exists(os.path.join(base, "code"))
