"""The conda / mamba double of TLJH's user environment.

The user environment of the double is a plain Python venv (so pip is
real), and this script stands in for its `bin/conda` and `bin/mamba`. It
RECORDS packages instead of installing them: each install writes
conda-meta/<name>-<version>-<build>.json into the prefix, as conda does,
and `list --json` reads them back, adding the venv's pip-installed
distributions with channel "pypi" (what conda shows for pip packages).
Conda packages are not importable.

Supported: `install` (alias `update`) with `--yes/-y`, `-c/--channel CH`,
`--prefix/-p P`, `--force-reinstall`, specs `name`, `name=1.2`, `name==1.2`,
`name>=1.2`; `list [--json] [--prefix P]`; `--version`. Versions come from
a small built-in table: an unknown package (or version) fails with conda's
PackagesNotFoundError, or mamba's "could not solve" text, exit 1. Without
--yes it asks "Proceed ([y]/n)?" and stops at end of input.

Every call is recorded in /var/lib/hubform-double/commands.jsonl.
Stdlib only, self-contained: the installer copies this file to bin/conda
and bin/mamba with the venv's python as interpreter.
"""

import json
import os
import re
import sys
import time

CONDA_VERSION = "24.7.1"
MAMBA_VERSION = "1.5.9"
RECORDS = "/var/lib/hubform-double/commands.jsonl"
DEFAULT_PREFIX = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# name -> versions (oldest first) and a build string, as conda-forge has.
TABLE = {
    "conda": ([CONDA_VERSION], "py311h38be061_0"),
    "mamba": ([MAMBA_VERSION], "py311h3072747_0"),
    "pip": (["24.2"], "pyh8b19718_1"),
    "numpy": (["1.26.4", "2.1.2"], "py311h71ddf71_0"),
    "pandas": (["2.2.2", "2.2.3"], "py311h7db5c69_1"),
    "scipy": (["1.14.1"], "py311he9a78e4_1"),
    "matplotlib": (["3.9.2"], "py311h38be061_1"),
    "gdal": (["3.9.2"], "py311hd8b6b5f_7"),
    "r-base": (["4.3.3", "4.4.1"], "h2a8b4e5_2"),
    "nodejs": (["20.17.0", "22.9.0"], "hf235a45_0"),
    "git": (["2.46.1"], "pl5321h59d505e_0"),
    "xarray": (["2024.9.0"], "pyhd8ed1ab_1"),
    "geopandas": (["1.0.1"], "pyhd8ed1ab_1"),
    "rasterio": (["1.4.1"], "py311h2c9b2a1_0"),
    "hubform-tiny-conda": (["1.0", "1.1"], "pyhd8ed1ab_0"),
}


def _tool():
    return "mamba" if os.path.basename(sys.argv[0]).startswith("mamba") else "conda"


def _record(argv, rc, started):
    entry = {
        "time": round(time.time(), 3),
        "tool": _tool(),
        "argv": argv,
        "rc": rc,
        "uid": os.geteuid(),
        "seconds": round(time.time() - started, 3),
    }
    try:
        with open(RECORDS, "a") as f:
            f.write(json.dumps(entry, sort_keys=True) + "\n")
    except OSError:
        pass


def _vkey(version):
    return [int(p) if p.isdigit() else p for p in re.split(r"[.]", version)]


def _parse_spec(spec):
    """(name, operator, version) of `numpy`, `numpy=1.2`, `numpy>=1.2`."""
    match = re.match(r"^([A-Za-z0-9_.\-]+)\s*(==|>=|<=|=|>|<)?\s*([^\s]*)$", spec)
    if not match:
        return spec, None, None
    name, op, version = match.groups()
    return name.lower(), op, version or None


def _choose(name, op, version):
    if name not in TABLE:
        return None
    versions, build = TABLE[name]
    candidates = []
    for v in versions:
        if op is None or version is None:
            ok = True
        elif op in ("=", "=="):
            ok = v == version or (
                op == "=" and version.endswith("*") and v.startswith(version[:-1])
            ) or (op == "=" and v.startswith(version + "."))
        elif op == ">=":
            ok = _vkey(v) >= _vkey(version)
        elif op == "<=":
            ok = _vkey(v) <= _vkey(version)
        elif op == ">":
            ok = _vkey(v) > _vkey(version)
        else:
            ok = _vkey(v) < _vkey(version)
        if ok:
            candidates.append(v)
    if not candidates:
        return None
    return candidates[-1], build


def _meta_dir(prefix):
    return os.path.join(prefix, "conda-meta")


def conda_packages(prefix):
    """{name: record} of the conda packages recorded in `prefix`."""
    found = {}
    folder = _meta_dir(prefix)
    for entry in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        if entry.endswith(".json"):
            with open(os.path.join(folder, entry)) as f:
                record = json.load(f)
            found[record["name"]] = record
    return found


def write_record(prefix, name, version, build, channel):
    folder = _meta_dir(prefix)
    os.makedirs(folder, exist_ok=True)
    for entry in os.listdir(folder):
        if entry.startswith(name + "-") and entry.endswith(".json"):
            with open(os.path.join(folder, entry)) as f:
                if json.load(f).get("name") == name:
                    os.remove(os.path.join(folder, entry))
    record = {
        "name": name,
        "version": version,
        "build": build,
        "build_number": 0,
        "channel": f"https://conda.anaconda.org/{channel}",
        "subdir": "noarch" if build.startswith("pyh") else "linux-64",
        "fn": f"{name}-{version}-{build}.conda",
        "requested_spec": name,
    }
    with open(os.path.join(folder, f"{name}-{version}-{build}.json"), "w") as f:
        json.dump(record, f, indent=1)


def _pip_distributions(prefix):
    """(name, version) of every distribution installed in the venv."""
    from importlib import metadata

    paths = []
    lib = os.path.join(prefix, "lib")
    for entry in os.listdir(lib) if os.path.isdir(lib) else []:
        site = os.path.join(lib, entry, "site-packages")
        if os.path.isdir(site):
            paths.append(site)
    seen = {}
    for dist in metadata.distributions(path=paths):
        name = dist.metadata["Name"]
        if name:
            seen.setdefault(name.lower(), dist.version)
    return seen


def _list(prefix, as_json):
    conda = conda_packages(prefix)
    rows = []
    for name, record in conda.items():
        channel = record["channel"].rsplit("/", 1)[-1]
        rows.append(
            {
                "base_url": record["channel"],
                "build_number": record.get("build_number", 0),
                "build_string": record["build"],
                "channel": channel,
                "dist_name": f"{name}-{record['version']}-{record['build']}",
                "name": name,
                "platform": record.get("subdir", "linux-64"),
                "version": record["version"],
            }
        )
    for name, version in _pip_distributions(prefix).items():
        if name in conda:
            continue
        rows.append(
            {
                "base_url": "https://pypi.org/",
                "build_number": 0,
                "build_string": "pypi_0",
                "channel": "pypi",
                "dist_name": f"{name}-{version}-pypi_0",
                "name": name,
                "platform": "pypi",
                "version": version,
            }
        )
    rows.sort(key=lambda r: r["name"])
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"# packages in environment at {prefix}:")
    print("#")
    print(f"# {'Name':<23} {'Version':<15} {'Build':>19}  Channel")
    for r in rows:
        channel = "" if r["channel"] == "conda-forge" else r["channel"]
        print(f"{r['name']:<25} {r['version']:<15} {r['build_string']:>19}  {channel}")
    return 0


def _not_found(tool, missing, channels):
    if tool == "mamba":
        print("Could not solve for environment specs", file=sys.stderr)
        print("The following package could not be installed", file=sys.stderr)
        for spec in missing:
            print(
                f"└─ {spec} does not exist (perhaps a typo or a missing channel).",
                file=sys.stderr,
            )
        return 1
    print("\nPackagesNotFoundError: The following packages are not available "
          "from current channels:\n", file=sys.stderr)
    for spec in missing:
        print(f"  - {spec}", file=sys.stderr)
    print("\nCurrent channels:\n", file=sys.stderr)
    for channel in channels:
        for subdir in ("linux-64", "noarch"):
            print(f"  - https://conda.anaconda.org/{channel}/{subdir}", file=sys.stderr)
    print(
        "\nTo search for alternate channels that may provide the conda package "
        "you're\nlooking for, navigate to\n\n    https://anaconda.org\n\n"
        "and use the search bar at the top of the page.\n",
        file=sys.stderr,
    )
    return 1


def _install(prefix, specs, channels, yes, force):
    tool = _tool()
    if not specs:
        print(f"{tool} install: error: too few arguments", file=sys.stderr)
        return 2
    if not os.path.isdir(_meta_dir(prefix)):
        print(
            f"\nEnvironmentLocationNotFound: Not a conda environment: {prefix}\n",
            file=sys.stderr,
        )
        return 1
    channels = channels or ["conda-forge"]
    chosen, missing = [], []
    for spec in specs:
        name, op, version = _parse_spec(spec)
        picked = _choose(name, op, version)
        if picked is None:
            missing.append(spec)
        else:
            chosen.append((name, picked[0], picked[1]))
    if missing:
        return _not_found(tool, missing, channels)

    installed = conda_packages(prefix)
    changes = [
        c for c in chosen
        if force or installed.get(c[0], {}).get("version") != c[1]
    ]
    print("Channels:")
    for channel in channels:
        print(f" - {channel}")
    print("Platform: linux-64")
    print("Collecting package metadata (repodata.json): done")
    print("Solving environment: done")
    if not changes:
        print("\n# All requested packages already installed.\n")
        return 0
    print("\n## Package Plan ##\n")
    print(f"  environment location: {prefix}\n")
    print("  added / updated specs:")
    for spec in specs:
        print(f"    - {spec}")
    print("\n\nThe following NEW packages will be INSTALLED:\n")
    for name, version, build in changes:
        print(f"  {name:<18} {channels[0]}/linux-64::{name}-{version}-{build}")
    print()
    if not yes:
        sys.stdout.write("\nProceed ([y]/n)? ")
        sys.stdout.flush()
        answer = sys.stdin.readline()
        if not answer:
            print("\n\nCondaSystemExit: Exiting.\n", file=sys.stderr)
            return 1
        if answer.strip().lower() not in ("", "y", "yes"):
            print("\n\nCondaSystemExit: Exiting.\n", file=sys.stderr)
            return 1
    print("\nDownloading and Extracting Packages:\n")
    print("Preparing transaction: done")
    print("Verifying transaction: done")
    print("Executing transaction: done")
    for name, version, build in changes:
        write_record(prefix, name, version, build, channels[0])
    return 0


def main(argv):
    tool = _tool()
    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: {tool} [-h] [-V] command ...")
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        if tool == "mamba":
            print(f"mamba {MAMBA_VERSION}\nconda {CONDA_VERSION}")
        else:
            print(f"conda {CONDA_VERSION}")
        return 0
    command, rest = argv[0], argv[1:]
    prefix, channels, specs = DEFAULT_PREFIX, [], []
    yes = force = as_json = False
    i = 0
    while i < len(rest):
        arg = rest[i]
        if arg in ("-y", "--yes"):
            yes = True
        elif arg == "--json":
            as_json = True
        elif arg == "--force-reinstall":
            force = True
        elif arg in ("-q", "--quiet"):
            pass
        elif arg in ("-c", "--channel", "-p", "--prefix") and i + 1 < len(rest):
            if arg in ("-c", "--channel"):
                channels.append(rest[i + 1])
            else:
                prefix = os.path.abspath(rest[i + 1])
            i += 1
        elif arg.startswith(("--channel=", "--prefix=")):
            key, value = arg.split("=", 1)
            if key == "--channel":
                channels.append(value)
            else:
                prefix = os.path.abspath(value)
        elif arg.startswith("-"):
            print(f"{tool}: error: unrecognized arguments: {arg}", file=sys.stderr)
            return 2
        else:
            specs.append(arg)
        i += 1
    if command in ("install", "update", "upgrade"):
        if os.geteuid() != 0 and not os.access(prefix, os.W_OK):
            print(
                f"\nEnvironmentNotWritableError: The current user does not have "
                f"write permissions to the target environment.\n"
                f"  environment location: {prefix}\n",
                file=sys.stderr,
            )
            return 1
        return _install(prefix, specs, channels, yes, force)
    if command == "list":
        return _list(prefix, as_json)
    print(
        f"{tool}: error: argument COMMAND: invalid choice: '{command}'",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    started = time.time()
    code = 1
    try:
        code = main(sys.argv[1:])
    finally:
        _record(sys.argv[1:], code, started)
    sys.exit(code)
