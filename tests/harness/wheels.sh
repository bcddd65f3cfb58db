#!/usr/bin/env bash
# Prepares what the TLJH double (tests/harness/tljh) needs, offline and
# idempotently, in ${HUBFORM_VENV:-<repo>/.venv}:
#
#   hubform-wheels/  tiny pure-Python wheels that test hosts pip-install
#                    from (no index, no network during tests):
#                      hubform-tiny-a 1.0, 1.1   import hubform_tiny_a
#                      hubform-tiny-b 1.0, 1.1   import hubform_tiny_b
#                      hubform-tiny-c 1.0        needs hubform-tiny-a>=1.1
#                    and empty stand-ins, version 0.0.0+hubform.stub, of
#                    the packages the example workshop installs: pandas,
#                    numpy, matplotlib, scipy, flopy, geopandas, jupyter,
#                    ipywidgets (import pandas ... works, nothing else);
#                    each module has __version__; built with `pip wheel`
#                    from generated sources and a stdlib build backend.
#   hubform-ca/      the test CA (ca.pem, ca.key) that plays Let's Encrypt:
#                    the ACME double signs with it, tests and test hosts
#                    trust it.
#
# A second run only checks: wheels are rebuilt when this recipe changes,
# the CA when it is missing or expires within 30 days.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${HUBFORM_VENV:-$root/.venv}"
wheels="$venv/hubform-wheels"
ca="$venv/hubform-ca"
backend="$here/tljh/wheels/tinybuild.py"

py="$venv/bin/python"
[ -x "$py" ] || py=python3

# name version dependency description
packages=(
    "hubform-tiny-a 1.0 - first tiny package, old release"
    "hubform-tiny-a 1.1 - first tiny package, new release"
    "hubform-tiny-b 1.0 - second tiny package, old release"
    "hubform-tiny-b 1.1 - second tiny package, new release"
    "hubform-tiny-c 1.0 hubform-tiny-a>=1.1 tiny package with a dependency"
)
# The example workshop's pip packages (specs/groundwater-workshop.yaml),
# for the offline demo and its test: each distribution's import name is
# its own name.
stub=0.0.0+hubform.stub
for name in pandas numpy matplotlib scipy flopy geopandas jupyter ipywidgets
do
    packages+=("$name $stub - empty offline stand-in of $name")
done

recipe="$( (cat "$0" "$backend"; printf '%s\n' "${packages[@]}") | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$wheels/.recipe" 2>/dev/null)" != "$recipe" ]; then
    echo "wheels: building tiny wheels into $wheels" >&2
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    rm -rf "$wheels"
    mkdir -p "$wheels"
    for line in "${packages[@]}"; do
        read -r name version dependency description <<<"$line"
        module="${name//-/_}"
        src="$work/$name-$version"
        mkdir -p "$src/$module"
        cp "$backend" "$src/tinybuild.py"
        deps='[]'
        [ "$dependency" = - ] || deps="[\"$dependency\"]"
        cat >"$src/pyproject.toml" <<EOF
[build-system]
requires = []
build-backend = "tinybuild"
backend-path = ["."]

[project]
name = "$name"
version = "$version"
description = "$description"
dependencies = $deps
EOF
        cat >"$src/$module/__init__.py" <<EOF
"""$name $version: $description, for hubform's tests."""

__version__ = "$version"
EOF
        "$py" -m pip wheel --quiet --no-deps --no-index \
            --disable-pip-version-check --wheel-dir "$wheels" "$src"
    done
    echo "$recipe" >"$wheels/.recipe"
fi

if ! openssl x509 -in "$ca/ca.pem" -noout -checkend $((30 * 86400)) \
    >/dev/null 2>&1 || [ ! -f "$ca/ca.key" ]; then
    echo "wheels: generating the test CA in $ca" >&2
    mkdir -p "$ca"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -days 3650 -subj "/O=hubform tests/CN=hubform test ACME CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout "$ca/ca.key.new" -out "$ca/ca.pem.new" 2>/dev/null
    chmod 0600 "$ca/ca.key.new"
    mv "$ca/ca.key.new" "$ca/ca.key"
    mv "$ca/ca.pem.new" "$ca/ca.pem"
fi
