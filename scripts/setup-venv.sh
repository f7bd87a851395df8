#!/usr/bin/env bash
# Create (or reuse) the project's virtualenv and install the toolkit with every extra.
# Usage: scripts/setup-venv.sh [VENV_DIR]   (default .venv; VENV overrides)
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-${VENV:-.venv}}"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
stamp="$venv/.installed-$(cat pyproject.toml | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip setuptools wheel
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -e '.[all]'
  touch "$stamp"
fi
echo "$venv"
