"""`python -m jupyterhub [-f CONFIG] [--upgrade-db]`, as TLJH's unit runs it."""

import sys

from . import __version__

if "--version" in sys.argv[1:]:
    print(__version__)
    sys.exit(0)

from hubform_double.hub import main  # noqa: E402

sys.exit(main(sys.argv[1:], __version__))
