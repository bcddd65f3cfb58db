#!/usr/bin/env bash
# Set up the local AWS stand-in for hubform's tests (idempotent):
#   * a venv at ${HUBFORM_VENV:-<repo>/.venv} with moto[server] pinned,
#   * the AMI catalogue <venv>/hubform-amis.json (read via MOTO_AMIS_PATH).
# Only the pip install needs the network; a second run does nothing but
# rewrite the catalogue.
set -euo pipefail

MOTO_VERSION=5.2.5

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${HUBFORM_VENV:-$root/.venv}"
py="$venv/bin/python"

if [ ! -x "$py" ]; then
    echo "setup: creating venv $venv" >&2
    python3 -m venv "$venv"
fi

# Installed version of moto plus the server extras (flask), or nothing.
installed="$("$py" - <<'PY' 2>/dev/null || true
import importlib.metadata as md
import flask, flask_cors  # noqa: F401  (moto[server] extras)
print(md.version("moto"))
PY
)"
if [ "$installed" != "$MOTO_VERSION" ] || [ ! -x "$venv/bin/moto_server" ]; then
    echo "setup: installing moto[server]==$MOTO_VERSION into $venv" >&2
    "$py" -m pip install --quiet --disable-pip-version-check \
        "moto[server]==$MOTO_VERSION"
fi

"$py" "$here/amis.py" "$venv/hubform-amis.json"
