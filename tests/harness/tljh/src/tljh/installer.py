"""The installer double: `python -m tljh.installer`, which bootstrap runs.

Follows TLJH's installer step by step, with its progress lines (INFO, on
stderr and appended to /opt/tljh/installer.log) in the same order:

  [Setting up admin users] / Granting passwordless sudo to JupyterHub
  admins... / Setting up user environment... / [Downloading & setting up
  user environment... | Reinstalling conda==..., mamba==... to ensure a
  consistent environment] / Setting up JupyterHub... / [Downloading
  traefik ...] / Waiting for JupyterHub to come up (i/20 tries) / Done!

What is real: config.yaml (kept on upgrade; `--admin` REPLACES
users.admin), the groups and sudoers file, the user environment (a venv
with a working pip, conda/mamba doubles), the units, services restarted
through `systemctl`, the /usr/bin/tljh-config symlink, and `--plugin` /
`--user-requirements-txt-url`, which really run pip (offline).

What is simulated: apt-get and every download (only logged to
installer.log, as TLJH logs successful commands), the hub's Python
packages (a stand-in jupyterhub package) and the traefik binary (the
traefik double). Admin passwords are stored hashed with SHA-256, not
bcrypt. The progress page is accepted but not served.

Faults (switch file /etc/hubform-double/fail-at holding a step name):
apt-get, hub-pip, tljh-installer (these three in bootstrap), user-env,
oom-user-env (the installer is SIGKILLed halfway through the user
environment, like the OOM killer; a re-run then finds a non-empty
/opt/tljh/user that is no conda install and refuses it), hub-env,
traefik-download. A failing command logs "Ran <cmd> with exit code 1" and
its output, then raises CalledProcessError, as TLJH's run_subprocess does.
"""

import argparse
import dbm
import hashlib
import logging
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request

from hubform_double import host, venvs

from . import traefik
from .config import (
    CONFIG_DIR,
    CONFIG_FILE,
    HUB_ENV_PREFIX,
    INSTALL_PREFIX,
    STATE_DIR,
    USER_ENV_PREFIX,
)
from .yamlfile import dump as _dump_yaml
from .yamlfile import load as _load_yaml

HERE = os.path.abspath(os.path.dirname(__file__))
SITE = os.path.dirname(HERE)
MINIFORGE_VERSION = "24.7.1-2"

logger = logging.getLogger("tljh")


class _Pause(logging.Handler):
    """Pause after each progress line, so tests can watch them stream."""

    def emit(self, record):
        if record.levelno >= logging.INFO:
            time.sleep(host.setting("STEP_DELAY", 0.0))


def init_logging():
    if logger.hasHandlers():
        return
    os.makedirs(INSTALL_PREFIX, exist_ok=True)
    to_file = logging.FileHandler(os.path.join(INSTALL_PREFIX, "installer.log"))
    to_file.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    logger.addHandler(to_file)
    to_stderr = logging.StreamHandler()
    to_stderr.setFormatter(logging.Formatter("%(message)s"))
    to_stderr.setLevel(logging.INFO)
    logger.addHandler(to_stderr)
    logger.addHandler(_Pause())
    logger.setLevel(logging.DEBUG)


def _fail(cmd, output):
    logger.error(f"Ran {' '.join(cmd)} with exit code 1")
    logger.error(output)
    raise subprocess.CalledProcessError(cmd=cmd, returncode=1)


def run_subprocess(cmd, *args, **kwargs):
    """Run cmd; its output goes to the log, or to the user if it fails."""
    proc = subprocess.run(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, *args, **kwargs
    )
    printable = " ".join(cmd)
    output = proc.stdout.decode(errors="replace")
    if proc.returncode != 0:
        logger.error(f"Ran {printable} with exit code {proc.returncode}")
        logger.error(output)
        raise subprocess.CalledProcessError(cmd=cmd, returncode=proc.returncode)
    logger.debug(f"Ran {printable} with exit code {proc.returncode}")
    logger.debug(output)
    return output


def simulate(step, cmd, failure):
    """A command the double does not run (apt, downloads): log it, or fail
    with `failure` as its output when the fail-at switch names `step`."""
    if host.switch("fail-at") == step:
        _fail(cmd, failure)
    logger.debug(f"Ran {' '.join(cmd)} with exit code 0")


def _network_error(url):
    return (
        f"curl: (6) Could not resolve host: {url.split('/')[2]}\n"
        if "://" in url
        else "network is unreachable\n"
    )


# --- steps ---------------------------------------------------------------------


def ensure_config_yaml():
    for path in (CONFIG_DIR, os.path.join(CONFIG_DIR, "jupyterhub_config.d")):
        os.makedirs(path, mode=0o700, exist_ok=True)
    config = {}
    if os.path.exists(CONFIG_FILE):
        with open(CONFIG_FILE) as f:
            config = _load_yaml(f.read())
    # TLJH always rewrites the file: a fresh install leaves `{}`.
    with open(CONFIG_FILE, "w+") as f:
        f.write(_dump_yaml(config))


def ensure_admins(admin_password_list):
    os.makedirs(STATE_DIR, mode=0o700, exist_ok=True)
    if not admin_password_list:
        return
    logger.info("Setting up admin users")
    config = {}
    if os.path.exists(CONFIG_FILE):
        with open(CONFIG_FILE) as f:
            config = _load_yaml(f.read())
    config["users"] = config.get("users", {})
    admins = []
    for entry in admin_password_list:
        for pair in entry:
            if ":" in pair:
                # TLJH splits on every ':', so a password holding one
                # crashes with "too many values to unpack".
                admin, password = pair.split(":")
                admins.append(admin)
                salt = secrets.token_hex(8)
                digest = hashlib.sha256((salt + password).encode()).hexdigest()
                path = os.path.join(STATE_DIR, "passwords.dbm")
                with dbm.open(path, "c", 0o600) as db:
                    db[admin] = f"sha256${salt}${digest}"
            else:
                admins.append(pair)
    # Replaces the list: admins added with tljh-config are dropped.
    config["users"]["admin"] = admins
    with open(CONFIG_FILE, "w+") as f:
        f.write(_dump_yaml(config))


def ensure_usergroups():
    for group in ("jupyterhub-admins", "jupyterhub-users"):
        subprocess.check_call(["groupadd", "--force", group])
    logger.info("Granting passwordless sudo to JupyterHub admins...")
    os.makedirs("/etc/sudoers.d/", exist_ok=True)
    with open("/etc/sudoers.d/jupyterhub-admins", "w") as f:
        f.write("%jupyterhub-admins ALL = (ALL) NOPASSWD: ALL\n")
        f.write("Defaults exempt_group = jupyterhub-admins\n")


def _conda_versions(prefix):
    from hubform_double.conda import conda_packages

    return {name: r["version"] for name, r in conda_packages(prefix).items()}


def _write_user_tools(prefix):
    """bin/conda, bin/mamba and bin/jupyter: the doubles, as scripts."""
    for name, source in (
        ("conda", "conda.py"),
        ("mamba", "conda.py"),
        ("jupyter", "jupyter.py"),
    ):
        with open(os.path.join(SITE, "hubform_double", source)) as f:
            body = f.read()
        path = os.path.join(prefix, "bin", name)
        with open(path, "w") as f:
            f.write(f"#!{prefix}/bin/python\n{body}")
        os.chmod(path, 0o755)


def _create_user_environment(prefix):
    from hubform_double.conda import write_record

    venvs.create(prefix, run_subprocess)
    _write_user_tools(prefix)
    python = ".".join(str(p) for p in sys.version_info[:3])
    write_record(prefix, "python", python, "hd12c33a_0_cpython", "conda-forge")
    write_record(prefix, "conda", "24.7.1", "py311h38be061_0", "conda-forge")
    write_record(prefix, "mamba", "1.5.9", "py311h3072747_0", "conda-forge")
    pip = venvs.pip_version() or "23.0.1"
    write_record(prefix, "pip", pip, "pyh8b19718_1", "conda-forge")


def _ensure_pip_requirements(prefix, requirements, upgrade):
    cmd = [os.path.join(prefix, "bin", "python"), "-m", "pip", "install"]
    if upgrade:
        cmd.append("--upgrade")
    run_subprocess(cmd + ["--requirement", requirements])


def ensure_user_environment(user_requirements_txt_file, features):
    logger.info("Setting up user environment...")
    versions = _conda_versions(USER_ENV_PREFIX)
    fresh = not versions
    if fresh:
        if os.path.exists(USER_ENV_PREFIX) and os.listdir(USER_ENV_PREFIX):
            msg = (
                "Found non-empty directory that is not a conda install in "
                f"{USER_ENV_PREFIX}. Please remove it (or rename it to preserve "
                "files) and run tljh again."
            )
            logger.error(msg)
            raise OSError(msg)
        logger.info("Downloading & setting up user environment...")
        arch = os.uname().machine
        if arch not in ("x86_64", "aarch64"):
            raise ValueError(
                f"Unsupported architecture: {arch}. TLJH only supports "
                "aarch64,x86_64"
            )
        url = (
            "https://github.com/conda-forge/miniforge/releases/download/"
            f"{MINIFORGE_VERSION}/Miniforge3-{MINIFORGE_VERSION}-Linux-{arch}.sh"
        )
        logger.info(f"Downloading conda installer {url}")
        started = time.monotonic()
        simulate("user-env", ["curl", "-L", url], _network_error(url))
        logger.info(
            f"Downloaded conda installer {url} in "
            f"{time.monotonic() - started:.1f}s"
        )
        if host.switch("fail-at") == "oom-user-env":
            # The OOM killer of a 1 GB host ends the installer halfway
            # through Miniforge's install, leaving a partial environment.
            os.makedirs(os.path.join(USER_ENV_PREFIX, "pkgs"), exist_ok=True)
            os.kill(os.getpid(), signal.SIGKILL)
        _create_user_environment(USER_ENV_PREFIX)
        run_subprocess(["chown", "-R", "0:0", USER_ENV_PREFIX])
        run_subprocess(["chmod", "-R", "o-w", USER_ENV_PREFIX])
    else:
        pins = [f"{p}=={versions[p]}" for p in ("conda", "mamba") if p in versions]
        logger.info(f"Reinstalling {', '.join(pins)} to ensure a consistent environment")
        _write_user_tools(USER_ENV_PREFIX)

    # The user env gets jupyterhub matching the hub's, and on a fresh
    # install notebook/jupyterlab extras: simulated (no such wheels here).
    pip = [os.path.join(USER_ENV_PREFIX, "bin", "python"), "-m", "pip", "install"]
    simulate("user-env", pip + ["--upgrade", "jupyterhub>=5.2.1,<6"], "")
    if fresh:
        simulate("user-env", pip + ["--requirement", "requirements-user-env-extras.txt"], "")

    if user_requirements_txt_file:
        try:
            _ensure_pip_requirements(USER_ENV_PREFIX, user_requirements_txt_file, True)
        except Exception as e:
            if not features.requirements_warn:
                raise
            logger.warning(
                "Failed to install requirements for user env from "
                f"{user_requirements_txt_file}: {e}"
            )


def ensure_jupyterhub_package(prefix, features):
    simulate(
        "hub-env",
        ["apt-get", "install", "--yes", "libssl-dev", "libcurl4-openssl-dev",
         "build-essential"],
        "E: Unable to locate package libssl-dev\n",
    )
    simulate(
        "hub-env",
        [os.path.join(prefix, "bin", "python"), "-m", "pip", "install", "--upgrade",
         "--requirement", os.path.join(HERE, "requirements-hub-env.txt")],
        "ERROR: Could not find a version that satisfies the requirement "
        "jupyterhub<6,>=5.2.1 (from versions: none)\n",
    )
    # The stand-in jupyterhub package and its metadata.
    target = os.path.join(SITE, "jupyterhub")
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(os.path.join(host.MIRROR, "src", "jupyterhub"), target)
    with open(os.path.join(target, "_version.py"), "w") as f:
        f.write(f'__version__ = "{features.jupyterhub}"\n')
    for old in os.listdir(SITE):
        if old.startswith("jupyterhub-") and old.endswith(".dist-info"):
            shutil.rmtree(os.path.join(SITE, old))
    info = os.path.join(SITE, f"jupyterhub-{features.jupyterhub}.dist-info")
    os.makedirs(info)
    with open(os.path.join(info, "METADATA"), "w") as f:
        f.write(f"Metadata-Version: 2.1\nName: jupyterhub\nVersion: {features.jupyterhub}\n")
    with open(os.path.join(info, "INSTALLER"), "w") as f:
        f.write("pip\n")
    with open(os.path.join(info, "RECORD"), "w") as f:
        f.write("")


def _traefik_version(binary):
    try:
        out = subprocess.run([binary, "version"], capture_output=True, text=True).stdout
    except OSError:
        return None
    for line in out.splitlines():
        if line.startswith("Version:"):
            return line.split()[-1]
    return None


def ensure_traefik_binary(prefix, features):
    binary = os.path.join(prefix, "bin", "traefik")
    if os.path.exists(binary) and _traefik_version(binary) == features.traefik:
        return
    plat = {"x86_64": "linux_amd64", "aarch64": "linux_arm64"}.get(os.uname().machine)
    if plat is None:
        raise OSError(f"Error. Platform: linux / {os.uname().machine} Not supported.")
    v = features.traefik
    url = (
        "https://github.com/traefik/traefik/releases"
        f"/download/v{v}/traefik_v{v}_{plat}.tar.gz"
    )
    logger.info(f"Downloading traefik {v} from {url}...")
    simulate("traefik-download", ["curl", url], _network_error(url))
    with open(binary, "w") as f:
        f.write(
            f"#!{prefix}/bin/python3\n"
            "# The traefik double (hubform): see hubform_double/proxy.py\n"
            "import sys\n"
            "from hubform_double.proxy import main\n"
            f"sys.exit(main(sys.argv[1:], {v!r}))\n"
        )
    os.chmod(binary, 0o755)


HUB_UNIT = """\
# Template file for JupyterHub systemd service (hubform's TLJH double)
[Unit]
# Traefik must have successfully started *before* we launch JupyterHub
Requires=traefik.service
After=traefik.service

[Service]
User=root
Restart=always
WorkingDirectory={install_prefix}/state
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
Environment=TLJH_INSTALL_PREFIX={install_prefix}
Environment=PATH={install_prefix}/hub/bin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ExecStart={python_interpreter_path} -m jupyterhub -f {jupyterhub_config_path} --upgrade-db

[Install]
WantedBy=multi-user.target
"""

TRAEFIK_UNIT = """\
# Template file for Traefik systemd service (hubform's TLJH double)
[Unit]
After=network.target

[Service]
User=root
Restart=always
ProtectHome=yes
ProtectSystem=strict
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ReadWritePaths={install_prefix}/state/rules
ReadWritePaths={install_prefix}/state/acme.json
WorkingDirectory={install_prefix}/state
ExecStart={install_prefix}/hub/bin/traefik \\
            -c {install_prefix}/state/traefik.toml

[Install]
WantedBy=multi-user.target
"""


def _systemctl(*args):
    subprocess.run(["systemctl", *args], check=True)


def ensure_jupyterhub_service(prefix):
    _systemctl("daemon-reload")
    secret = os.path.join(STATE_DIR, "traefik-api.secret")
    if not os.path.exists(secret):
        with open(secret, "w") as f:
            f.write(secrets.token_hex(32))
    traefik.ensure_traefik_config(STATE_DIR)

    params = dict(
        python_interpreter_path=sys.executable,
        jupyterhub_config_path=os.path.join(HERE, "jupyterhub_config.py"),
        install_prefix=INSTALL_PREFIX,
    )
    os.makedirs("/etc/systemd/system", exist_ok=True)
    units = (("jupyterhub.service", HUB_UNIT), ("traefik.service", TRAEFIK_UNIT))
    for name, template in units:
        with open(os.path.join("/etc/systemd/system", name), "w") as f:
            f.write(template.format(**params))
    _systemctl("daemon-reload")

    # Restarted even when running: an upgrade briefly takes the hub down.
    _systemctl("restart", "jupyterhub")
    _systemctl("restart", "traefik")
    _systemctl("enable", "jupyterhub")
    _systemctl("enable", "traefik")


def ensure_jupyterhub_running(times=20):
    # TLJH probes http://127.0.0.1 (port 80); the double probes the port
    # standing in for 80. Any HTTP answer, even 503, counts as "up".
    port = host.setting("HTTP_PORT", 80)
    # requests.get(..., verify=False) follows an HTTPS redirect unverified.
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    opener = urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=unverified)
    )
    for i in range(times):
        logger.info(f"Waiting for JupyterHub to come up ({i + 1}/{times} tries)")
        try:
            opener.open(f"http://127.0.0.1:{port}", timeout=30).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(1)
    raise Exception(f"Installation failed: JupyterHub did not start in {times}s")


def ensure_symlinks(prefix):
    source = os.path.join(prefix, "bin", "tljh-config")
    dest = "/usr/bin/tljh-config"
    if os.path.exists(dest):
        if os.path.realpath(dest) != source:
            raise FileExistsError(
                f"/usr/bin/tljh-config exists but is not a symlink to {source}"
            )
        return
    os.symlink(source, dest)


def setup_plugins(plugins):
    if plugins:
        cmd = [os.path.join(HUB_ENV_PREFIX, "bin", "python3"), "-m", "pip", "install"]
        run_subprocess(cmd + ["--upgrade"] + list(plugins))


def main():
    init_logging()
    argparser = argparse.ArgumentParser()
    argparser.add_argument(
        "--admin", nargs="*", action="append", help="List of usernames set to be admin"
    )
    argparser.add_argument(
        "--user-requirements-txt-url",
        help="URL to a requirements.txt file that should be installed in the "
        "user environment",
    )
    argparser.add_argument("--plugin", nargs="*", help="Plugin pip-specs to install")
    argparser.add_argument(
        "--progress-page-server-pid", type=int, help="The pid of the progress page server"
    )
    args = argparser.parse_args()
    features = host.Features(host.installed_version())

    setup_plugins(args.plugin)
    ensure_config_yaml()
    ensure_admins(args.admin)
    ensure_usergroups()
    if args.user_requirements_txt_url:
        logger.info("Installing packages from user_requirements_txt_url")
    ensure_user_environment(args.user_requirements_txt_url, features)

    logger.info("Setting up JupyterHub...")
    ensure_jupyterhub_package(HUB_ENV_PREFIX, features)
    ensure_traefik_binary(HUB_ENV_PREFIX, features)
    if args.progress_page_server_pid:
        try:
            os.kill(args.progress_page_server_pid, signal.SIGINT)
            print("Progress page server stopped successfully.")
        except Exception as e:
            logger.error(f"Couldn't stop the progress page server. Exception was {e}.")

    ensure_jupyterhub_service(HUB_ENV_PREFIX)
    ensure_jupyterhub_running()
    ensure_symlinks(HUB_ENV_PREFIX)
    logger.info("Done!")


if __name__ == "__main__":
    main()
