"""One SSH test host (tests/harness/testhost.sh: a real sshd in private
namespaces, root only) for the host probe's row: a plain Ubuntu-like
host without TLJH, since a probe is one SSH round trip whatever it finds.
"""

import os
import subprocess
import sys
from pathlib import Path

from world import ROOT, free_port

TESTHOST = ROOT / "tests/harness/testhost.sh"
PORT_TAKEN = 3  # testhost.sh's exit code when the port was taken meanwhile


class TestHost:
    """A test host in `folder`, started by `start`, gone after `stop`."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.port = None

    @staticmethod
    def possible():
        """Why a test host cannot run here, or None."""
        if os.geteuid() != 0:
            return "needs root (sshd in private namespaces)"
        if not Path("/usr/sbin/sshd").exists():
            return "needs sshd: run tests/harness/setup-host.sh"
        return None

    @property
    def endpoint(self):
        """HOST:PORT for --ssh-endpoint."""
        return f"127.0.0.1:{self.port}"

    @property
    def login_key(self):
        """The private key that logs in as ubuntu."""
        return self.folder / "id_ed25519"

    def start(self, log):
        """Boots the host on a free port."""
        for _ in range(5):
            self.port = free_port()
            with open(log, "ab") as out:
                code = subprocess.run(
                    [TESTHOST, "start", self.folder, str(self.port)],
                    stdout=out, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                ).returncode
            if code == 0:
                return
            if code != PORT_TAKEN:
                break
        sys.exit(f"bench: the test host did not start; see {log}")

    def stop(self, log):
        """Stops the host's processes and deletes its folder."""
        if not (self.folder / "testhost.conf").exists():
            return
        with open(log, "ab") as out:
            subprocess.run([TESTHOST, "stop", self.folder], stdout=out,
                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
