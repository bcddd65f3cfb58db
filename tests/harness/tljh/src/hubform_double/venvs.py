"""Making the double's Python environments quickly, offline.

`python3 -m venv` with ensurepip takes about 3 s; creating the venv without
pip and unpacking the pip wheel the system ships (Debian's
/usr/share/python-wheels, the one ensurepip would use) gives the same pip
in a tenth of that. Every environment gets a pip.conf that makes pip
install only from the test host's wheel folder.
"""

import glob
import os
import sysconfig
import zipfile

from . import host


def purelib(prefix):
    """site-packages of the venv at `prefix`."""
    return sysconfig.get_paths(
        vars={"base": prefix, "platbase": prefix}, scheme="venv"
    )["purelib"]


def _pip_wheel():
    found = sorted(glob.glob("/usr/share/python-wheels/pip-*.whl"))
    return found[-1] if found else None


def pip_version():
    wheel = _pip_wheel()
    return os.path.basename(wheel).split("-")[1] if wheel else None


def write_pip_conf(prefix):
    """pip in this environment installs from the wheel folder only."""
    wheels = host.settings().get("WHEELS", "")
    with open(os.path.join(prefix, "pip.conf"), "w") as f:
        f.write("[global]\n")
        f.write("no-index = true\n")
        if wheels:
            f.write(f"find-links = {wheels}\n")
        f.write("disable-pip-version-check = true\n")
        f.write("no-cache-dir = true\n")


def create(prefix, run):
    """A venv with pip at `prefix`; `run` runs a command list."""
    run(["python3", "-m", "venv", "--without-pip", prefix])
    wheel = _pip_wheel()
    if wheel is None:
        run([os.path.join(prefix, "bin", "python3"), "-m", "ensurepip"])
    else:
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(purelib(prefix))
        info = glob.glob(os.path.join(purelib(prefix), "pip-*.dist-info"))
        for folder in info:
            with open(os.path.join(folder, "INSTALLER"), "w") as f:
                f.write("pip\n")
        short = "python%d.%d" % tuple(
            int(p) for p in sysconfig.get_python_version().split(".")
        )
        for name in ("pip", "pip3", "pip" + short[len("python") :]):
            script = os.path.join(prefix, "bin", name)
            with open(script, "w") as f:
                f.write(
                    f"#!{prefix}/bin/python3\n"
                    "import sys\n"
                    "from pip._internal.cli.main import main\n"
                    "if __name__ == '__main__':\n"
                    "    sys.exit(main())\n"
                )
            os.chmod(script, 0o755)
    write_pip_conf(prefix)

