#!/usr/bin/env bash
# The project's test command: installs what the tests need into .venv, then runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$(scripts/setup-venv.sh | tail -n 1)
exec "$venv/bin/python" -m pytest "$@"
