#!/usr/bin/env bash
# Creates (once) the virtual environment the Python test clients and baselines run in, with
# the packages from PyPI pinned in ops/requirements-test.txt. Prints its python path.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv="$root/.venv-test"
stamp="$venv/.requirements.sha"
want=$(sha256sum "$root/ops/requirements-test.txt" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  python3 -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$root/ops/requirements-test.txt" >&2
  echo "$want" > "$stamp"
fi
echo "$venv/bin/python"
