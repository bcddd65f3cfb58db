"""hubform's double of TLJH's bootstrap/bootstrap.py.

Run it as the real one is run, as root with flags:

    sudo -n python3 - --admin alice [--version 2.0.0] < bootstrap.py
    sudo -n python3 /usr/local/lib/hubform-double/bootstrap.py --admin alice

It only works on a test host prepared by tests/harness/tljh/provision.sh
(it refuses to run elsewhere). Standard library only, like the real script.

Reproduced from TLJH:

* host checks, in TLJH's order and words, printed on stdout, exit 1:
  Ubuntu >= 22.04 or Debian >= 11, Python >= 3.9, systemd + systemctl;
* no explicit root check: as non-root it dies with a PermissionError
  traceback (creating /opt/tljh or opening installer.log), exit 1;
* `--version V` (default: latest release, 2.0.0; partial "2" or "2.0"
  resolve to the newest matching release, a branch or commit is used as
  is) and `--show-progress-page` are bootstrap's; every other flag goes to
  the installer, which rejects unknown ones (argparse, exit 2);
* fresh install vs upgrade is decided by /opt/tljh/hub/bin/python3;
* progress lines go to stderr (bare messages) and to
  /opt/tljh/installer.log (timestamped, mode 0500), nothing to stdout;
* it ends by exec'ing `/opt/tljh/hub/bin/python3 -m tljh.installer FLAGS`.

Instead of apt-get, GitHub and PyPI, it installs the double's `tljh`
package from the host's mirror (/usr/local/lib/hubform-double/src) and
logs the commands it skips to installer.log. The installed version is
what the real one records too: the `the-littlest-jupyterhub` distribution
in the hub environment, so this probe works on both:

    /opt/tljh/hub/bin/python3 -c \
      "import importlib.metadata as m; print(m.version('the-littlest-jupyterhub'))"

It prints 2.0.0, 1.0.0, ... for releases and 2.0.1.dev0 for a branch or
commit (what main's setup.py says).
"""

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from argparse import ArgumentParser

MIRROR = "/usr/local/lib/hubform-double"
HOST_ENV = "/etc/hubform-double/host.env"
FAIL_AT = "/etc/hubform-double/fail-at"
REPO = "https://github.com/jupyterhub/the-littlest-jupyterhub.git"
# The repository's tags, as `git ls-remote --tags` would list them.
TAGS = ["0.2.0", "1.0.0", "1.0.0b1", "2.0.0", "2.0.0b1"]
# A branch or commit installs what main's setup.py declares.
BRANCH_VERSION = "2.0.1.dev0"
BRANCHES = ["main", "HEAD"]

logger = logging.getLogger("tljh")


def _settings():
    values = {}
    if os.path.exists(HOST_ENV):
        with open(HOST_ENV) as f:
            for line in f:
                key, sep, value = line.strip().partition("=")
                if sep and not key.startswith("#"):
                    values[key.strip()] = value.strip().strip("'\"")
    return values


class _Pause(logging.Handler):
    """Pause after each progress line, so tests can watch them stream."""

    def emit(self, record):
        if record.levelno >= logging.INFO:
            try:
                time.sleep(float(_settings().get("STEP_DELAY") or 0))
            except ValueError:
                pass


def run_subprocess(cmd, *args, **kwargs):
    """As TLJH: output to the log on success, to the user on failure."""
    proc = subprocess.run(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, *args, **kwargs
    )
    printable = " ".join(cmd)
    if proc.returncode != 0:
        logger.error(f"Ran {printable} with exit code {proc.returncode}")
        logger.error(proc.stdout.decode())
        raise subprocess.CalledProcessError(cmd=cmd, returncode=proc.returncode)
    logger.debug(f"Ran {printable} with exit code {proc.returncode}")
    logger.debug(proc.stdout.decode())
    return proc.stdout.decode()


def _fault():
    try:
        with open(FAIL_AT) as f:
            return f.read().strip()
    except OSError:
        return None


def simulate(step, cmd, failure, output=""):
    """A command the double skips: logged, or failed if fail-at says so."""
    printable = " ".join(cmd)
    if _fault() == step:
        logger.error(f"Ran {printable} with exit code 1")
        logger.error(failure)
        raise subprocess.CalledProcessError(cmd=cmd, returncode=1)
    logger.debug(f"Ran {printable} with exit code 0")
    logger.debug(output)
    return output


def get_os_release_variable(key):
    """A value of /etc/os-release, read by bash as TLJH does."""
    return (
        subprocess.check_output(
            ["/bin/bash", "-c", "source /etc/os-release && echo ${%s}" % key]
        )
        .decode()
        .strip()
    )


def _parse_version(text):
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


def ensure_host_system_can_install_tljh():
    distro = get_os_release_variable("ID")
    version = get_os_release_variable("VERSION_ID")
    if distro not in ["ubuntu", "debian"]:
        print("The Littlest JupyterHub currently supports Ubuntu or Debian Linux only")
        sys.exit(1)
    elif distro == "ubuntu" and _parse_version(version) < (22, 4):
        print("The Littlest JupyterHub requires Ubuntu 22.04 or higher")
        sys.exit(1)
    elif distro == "debian" and _parse_version(version) < (11,):
        print("The Littlest JupyterHub requires Debian 11 or higher")
        sys.exit(1)

    if sys.version_info < (3, 9):
        print(f"bootstrap.py must be run with at least Python 3.9, found {sys.version}")
        sys.exit(1)

    if not shutil.which("systemd") or not shutil.which("systemctl"):
        print("Systemd is required to run TLJH")
        if os.path.exists("/.dockerenv"):
            print("Running inside a docker container without systemd isn't supported")
            print(
                "We recommend against running a production TLJH instance inside "
                "a docker container"
            )
            print(
                "For local development, see "
                "http://tljh.jupyter.org/en/latest/contributing/dev-setup.html"
            )
        sys.exit(1)
    return distro, version


def _resolve_git_version(version):
    """A release tag for "latest" or "2" / "2.0" / "2.0.0"; else `version`."""
    if version != "latest" and not re.match(r"\d+(\.\d+)?(\.\d+)?$", version):
        return version
    simulate(
        "git",
        ["git", "ls-remote", "--tags", "--refs", REPO],
        "fatal: unable to access "
        f"'{REPO}/': Could not resolve host: github.com\n",
    )
    releases = set()
    for tag in TAGS:
        if tag == version:
            return tag
        if re.match(r"\d+\.\d+\.\d+$", tag):
            releases.add(tuple(int(v) for v in tag.split(".")))
    ordered = sorted(releases, reverse=True)
    if version == "latest":
        return ".".join(str(v) for v in ordered[0])
    wanted = tuple(int(v) for v in version.split("."))
    for candidate in ordered:
        if candidate[: len(wanted)] == wanted:
            return ".".join(str(v) for v in candidate)
    raise Exception(
        "No version matching {} found {}".format(version, sorted(releases))
    )


def _distribution_version(ref):
    """Version pip would record for a git ref, or None if pip would fail."""
    if ref in TAGS:
        return ref
    if ref in BRANCHES or re.match(r"^[0-9a-f]{7,40}$", ref):
        return BRANCH_VERSION
    return None


def _site_packages(prefix):
    import sysconfig

    return sysconfig.get_paths(
        vars={"base": prefix, "platbase": prefix}, scheme="venv"
    )["purelib"]


def _create_hub_env(prefix, settings):
    """`python3 -m venv`, with pip unpacked from the system's pip wheel
    (what ensurepip installs, without its three seconds)."""
    run_subprocess(["python3", "-m", "venv", "--without-pip", prefix])
    wheels = sorted(
        f for f in os.listdir("/usr/share/python-wheels") if f.startswith("pip-")
    ) if os.path.isdir("/usr/share/python-wheels") else []
    if wheels:
        with zipfile.ZipFile(os.path.join("/usr/share/python-wheels", wheels[-1])) as z:
            z.extractall(_site_packages(prefix))
        for name in ("pip", "pip3"):
            path = os.path.join(prefix, "bin", name)
            with open(path, "w") as f:
                f.write(
                    f"#!{prefix}/bin/python3\nimport sys\n"
                    "from pip._internal.cli.main import main\n"
                    "sys.exit(main())\n"
                )
            os.chmod(path, 0o755)
    else:
        run_subprocess([os.path.join(prefix, "bin", "python3"), "-m", "ensurepip"])
    with open(os.path.join(prefix, "pip.conf"), "w") as f:
        f.write("[global]\nno-index = true\n")
        if settings.get("WHEELS"):
            f.write(f"find-links = {settings['WHEELS']}\n")
        f.write("disable-pip-version-check = true\nno-cache-dir = true\n")


def _install_tljh(prefix, spec, ref):
    """What `pip install --upgrade git+...@ref` does, from the mirror."""
    pip = os.path.join(prefix, "bin", "pip")
    cmd = [pip, "install", "--upgrade", spec]
    version = _distribution_version(ref)
    source = os.path.join(MIRROR, "src")
    if version is None:
        logger.error(f"Ran {' '.join(cmd)} with exit code 1")
        logger.error(
            f"Collecting {spec}\n"
            f"  Cloning {REPO} (to revision {ref}) to /tmp/pip-req-build-tljh\n"
            f"  WARNING: Did not find branch or tag '{ref}', assuming revision "
            "or ref.\n"
            f"  error: pathspec '{ref}' did not match any file(s) known to git\n"
            "  error: subprocess-exited-with-error\n"
        )
        raise subprocess.CalledProcessError(cmd=cmd, returncode=1)
    simulate(
        "tljh-installer",
        cmd,
        f"ERROR: Error [Errno 101] Network is unreachable while executing "
        f"command git clone --filter=blob:none --quiet {REPO}\n",
    )
    if not os.path.isdir(os.path.join(source, "tljh")):
        raise FileNotFoundError(f"hubform TLJH double: no sources in {source}")

    site = _site_packages(prefix)
    for package in ("tljh", "hubform_double"):
        shutil.rmtree(os.path.join(site, package), ignore_errors=True)
        shutil.copytree(
            os.path.join(source, package),
            os.path.join(site, package),
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    for entry in os.listdir(site):
        if entry.startswith("the_littlest_jupyterhub-"):
            shutil.rmtree(os.path.join(site, entry))
    info = os.path.join(site, f"the_littlest_jupyterhub-{version}.dist-info")
    os.makedirs(info)
    files = {
        "METADATA": (
            "Metadata-Version: 2.1\nName: the-littlest-jupyterhub\n"
            f"Version: {version}\nSummary: hubform's double of TLJH\n"
        ),
        "INSTALLER": "pip\n",
        "entry_points.txt": "[console_scripts]\ntljh-config = tljh.config:main\n",
        "top_level.txt": "tljh\n",
        "direct_url.json": json.dumps(
            {
                "url": REPO,
                "vcs_info": {
                    "vcs": "git",
                    "requested_revision": ref,
                    "commit_id": hashlib.sha1(ref.encode()).hexdigest(),
                },
            }
        ),
        "RECORD": "",
    }
    for name, text in files.items():
        with open(os.path.join(info, name), "w") as f:
            f.write(text)
    script = os.path.join(prefix, "bin", "tljh-config")
    with open(script, "w") as f:
        f.write(
            f"#!{prefix}/bin/python3\n"
            "import sys\n"
            "from tljh.config import main\n"
            "if __name__ == '__main__':\n"
            "    sys.exit(main())\n"
        )
    os.chmod(script, 0o755)


def main():
    distro, version = ensure_host_system_can_install_tljh()

    parser = ArgumentParser(
        description=(
            "The bootstrap.py script accept the following command line flags. "
            "All other flags are passed through to the tljh installer without "
            "interception by this script."
        )
    )
    parser.add_argument(
        "--show-progress-page",
        action="store_true",
        help=(
            "Starts a local web server listening on port 80 where logs can be "
            "accessed during installation (not served by hubform's double)."
        ),
    )
    parser.add_argument(
        "--version",
        default="",
        help=(
            "TLJH version or Git reference. Default 'latest' is the most recent "
            "release. Partial versions can be specified, for example '1', '1.0' "
            "or '1.0.0'. You can also pass a branch name such as 'main' or a "
            "commit hash."
        ),
    )
    args, tljh_installer_flags = parser.parse_known_args()

    install_prefix = os.environ.get("TLJH_INSTALL_PREFIX", "/opt/tljh")
    hub_env_prefix = os.path.join(install_prefix, "hub")
    hub_env_python = os.path.join(hub_env_prefix, "bin", "python3")
    hub_env_pip = os.path.join(hub_env_prefix, "bin", "pip")
    initial_setup = not os.path.exists(hub_env_python)

    # Not in TLJH: the double installs only onto a provisioned test host.
    if not os.path.exists(HOST_ENV):
        print(
            f"hubform TLJH double: {HOST_ENV} is missing, so this is not a "
            "provisioned test host; refusing to install",
            file=sys.stderr,
        )
        sys.exit(1)
    settings = _settings()

    os.makedirs(install_prefix, exist_ok=True)
    file_logger_path = os.path.join(install_prefix, "installer.log")
    file_logger = logging.FileHandler(file_logger_path)
    os.chmod(file_logger_path, 0o500)
    file_logger.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    file_logger.setLevel(logging.DEBUG)
    logger.addHandler(file_logger)
    stderr_logger = logging.StreamHandler()
    stderr_logger.setFormatter(logging.Formatter("%(message)s"))
    stderr_logger.setLevel(logging.INFO)
    logger.addHandler(stderr_logger)
    logger.addHandler(_Pause())
    logger.setLevel(logging.DEBUG)

    if not initial_setup:
        logger.info("Existing TLJH installation detected, upgrading...")
    else:
        logger.info("Existing TLJH installation not detected, installing...")
        logger.info("Setting up hub environment...")
        logger.info("Installing Python, venv, pip, and git via apt-get...")
        no_network = (
            "Err:1 http://deb.debian.org/debian bookworm InRelease\n"
            "  Temporary failure resolving 'deb.debian.org'\n"
        )
        simulate("apt-get", ["apt-get", "update"], no_network)
        simulate(
            "apt-get",
            ["apt-get", "install", "--yes", "software-properties-common"],
            no_network,
        )
        if distro == "ubuntu":
            simulate("apt-get", ["add-apt-repository", "universe", "--yes"], no_network)
        simulate("apt-get", ["apt-get", "update"], no_network)
        simulate(
            "apt-get",
            ["apt-get", "install", "--yes", "python3", "python3-venv",
             "python3-pip", "git", "sudo"],
            no_network,
        )
        logger.info("Setting up virtual environment at {}".format(hub_env_prefix))
        os.makedirs(hub_env_prefix, exist_ok=True)
        _create_hub_env(hub_env_prefix, settings)

    logger.info("Upgrading pip...")
    simulate(
        "hub-pip",
        [hub_env_pip, "install", "--upgrade", "pip"],
        "WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, "
        "status=None)) after connection broken by 'NewConnectionError': "
        "/simple/pip/\nERROR: Could not find a version that satisfies the "
        "requirement pip (from versions: none)\n",
    )

    ref = _resolve_git_version(args.version or "latest")
    spec = f"git+{REPO}@{ref}"
    if initial_setup:
        logger.info("Installing TLJH installer...")
    else:
        logger.info("Upgrading TLJH installer...")
    _install_tljh(hub_env_prefix, spec, ref)

    logger.info("Running TLJH installer...")
    os.execv(
        hub_env_python, [hub_env_python, "-m", "tljh.installer"] + tljh_installer_flags
    )


if __name__ == "__main__":
    main()
