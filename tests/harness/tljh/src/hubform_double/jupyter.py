"""`jupyter` in the double's user environment.

Only enough to show that `jupyter nbextension` is gone (Notebook 7 and
JupyterLab 4 have no such command): every subcommand fails the way the
jupyter launcher does when `jupyter-<subcommand>` is not on PATH. The
installer copies this file to bin/jupyter.
"""

import sys


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: jupyter [-h] [--version] [--config-dir] [--data-dir]")
        print("               [--runtime-dir] [--paths] [--json] [--debug]")
        print("               [subcommand]")
        return 0 if argv else 1
    if argv[0] == "--version":
        print("Selected Jupyter core packages...")
        print("jupyterlab       : 4.2.5")
        print("notebook         : 7.2.2")
        return 0
    print(f"Jupyter command `jupyter-{argv[0]}` not found.", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
