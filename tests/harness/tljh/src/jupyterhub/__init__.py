"""Stand-in for the jupyterhub package in TLJH's hub environment.

Only what the double needs: a version, and `python -m jupyterhub`, which
runs hubform_double.hub (see there). The installer rewrites _version.py
with the JupyterHub version the chosen TLJH release would install.
"""

from ._version import __version__

__all__ = ["__version__"]
