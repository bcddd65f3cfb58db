"""What the TLJH double knows about the test host it runs on.

None of this exists in real TLJH. A provision script (tests/harness/tljh/
provision.sh) writes the host's settings and switches under /etc/
hubform-double; the double keeps what tests inspect under /var/lib/
hubform-double. Both live in the test host's copy-on-write overlays.

Settings (`/etc/hubform-double/host.env`, KEY=VALUE lines):

* HTTP_PORT / HTTPS_PORT: what ports 80 and 443 are on this host. They are
  the defaults of `http.port` / `https.port` and the port the installer
  probes (real TLJH hard-codes 80 there).
* STEP_DELAY: seconds the installer pauses after each progress line.
* HUB_START_DELAY: seconds the hub takes before it answers.
* ACME_DELAY: seconds before the ACME double "obtains" a certificate.
* WHEELS: the folder pip installs from (no index).

Switches (files in /etc/hubform-double; create one to turn a fault on):

* hang-reload-hub: `tljh-config reload hub` never sees the hub (issue #903).
* hub-never-ready: the hub process starts but never answers.
* acme-fails: the ACME double cannot obtain a certificate.
* fail-at: the installer step named in the file fails (see installer.py).

Records (JSON lines under /var/lib/hubform-double, one object a line):

* commands.jsonl: every tljh-config, conda, mamba and systemctl call.
* reloads.jsonl: every `tljh-config reload`, when it starts and ends.
* acme.jsonl: every certificate the ACME double issued.
* hub-loaded.json / proxy-loaded.json: what the running hub and proxy read
  when they started.
* systemd/<unit>.json: the systemctl double's state and counters.
"""

import json
import os
import time

ETC = "/etc/hubform-double"
HOST_ENV = os.path.join(ETC, "host.env")
STATE = "/var/lib/hubform-double"
RUN = os.path.join(STATE, "run")
LOGS = "/var/log/hubform-double"
CA_DIR = os.path.join(ETC, "ca")
# Where provision.sh puts the double's "download server": these sources,
# which bootstrap and installer install from instead of GitHub and PyPI.
MIRROR = "/usr/local/lib/hubform-double"

# Versions the double can install. `main` stands for any branch or commit.
RELEASES = ("0.2.0", "1.0.0", "1.0.0b1", "2.0.0", "2.0.0b1")
MAIN_VERSION = "2.0.1.dev0"
JUPYTERHUB_VERSION = {"1": "4.1.6", "2": "5.2.1"}


def settings():
    """The KEY=VALUE pairs of host.env ({} when the host is not set up)."""
    values = {}
    try:
        with open(HOST_ENV) as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#") and "=" in line:
                    key, value = line.split("=", 1)
                    values[key.strip()] = value.strip().strip("'\"")
    except FileNotFoundError:
        pass
    return values


def setting(name, default):
    """One setting, converted to the type of `default`."""
    value = settings().get(name)
    if value is None or value == "":
        return default
    try:
        return type(default)(value)
    except ValueError:
        return default


def switch(name):
    """Contents of a fault switch file, or None when it is off."""
    try:
        with open(os.path.join(ETC, name)) as f:
            return f.read().strip()
    except (FileNotFoundError, PermissionError):
        return None


def now():
    """Time fields every record carries."""
    t = time.time()
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))
    return {"time": round(t, 3), "iso_time": f"{iso}.{int(t % 1 * 1000):03d}Z"}


def record(name, entry):
    """Append one JSON line to a record file (skipped if not writable)."""
    line = dict(now(), uid=os.geteuid())
    line.update(entry)
    try:
        os.makedirs(STATE, exist_ok=True)
        with open(os.path.join(STATE, name), "a") as f:
            f.write(json.dumps(line, sort_keys=True) + "\n")
    except OSError:
        pass  # not root and the file is not open to all: not recorded


def write_json(name, data):
    """Replace a whole JSON state file atomically."""
    os.makedirs(STATE, exist_ok=True)
    path = os.path.join(STATE, name)
    with open(path + ".tmp", "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(path + ".tmp", path)


def version_tuple(version):
    """(2, 0, 1) for "2.0.1.dev0"; non-numeric parts are dropped."""
    parts = []
    for piece in version.split("."):
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


class Features:
    """What differs between the TLJH versions the double installs."""

    def __init__(self, version):
        v = version_tuple(version)
        self.version = version
        # tljh-config gained --validate/--no-validate, the schema and the
        # file lock in 2.0.0.
        self.validation = v >= (2, 0)
        self.lock = v >= (2, 0)
        # `none` -> null, and main's `limits` schema, came after 2.0.0.
        self.none_is_null = v > (2, 0, 0)
        self.limits_any_of = v > (2, 0, 0)
        # A failing --user-requirements-txt-url only warns after 2.0.0.
        self.requirements_warn = v > (2, 0, 0)
        if v > (2, 0, 0):
            self.traefik = "3.6.5"
        elif v >= (2, 0):
            self.traefik = "3.1.4"
        else:
            self.traefik = "2.10.1"
        self.jupyterhub = JUPYTERHUB_VERSION["2" if v >= (2, 0) else "1"]


def installed_version():
    """Version of the installed the-littlest-jupyterhub distribution."""
    from importlib import metadata

    try:
        return metadata.version("the-littlest-jupyterhub")
    except metadata.PackageNotFoundError:
        return MAIN_VERSION
