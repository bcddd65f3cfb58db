"""The bench's world: one moto_server and the test proxy in front of it,
both on free 127.0.0.1 ports, shared by every tool the bench runs.

Every tool talks to the proxy (tests/harness/proxy.py), which counts each AWS request by
service and action; moto is reset between scenarios. Two of
the proxy's always-on rules are switched off for the bench because they
model AWS behaviour the peers cannot sit through on a stand-in: the
`pending` phase after a launch (awscli's and Ansible's waiters poll every
15 s) and the quota of 5 Elastic IPs (the fleet holds 50 workshops).
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REGION = "ap-south-1"  # the example's Region
# Requests to 127.0.0.1 must never go through an HTTP proxy of the machine.
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port():
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url, method="GET", body=None):
    """The JSON answer of a control or moto-api request."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    with OPENER.open(request, timeout=30) as answer:
        text = answer.read()
    return json.loads(text) if text.strip() else None


class World:
    """moto and the proxy, started by `start` and stopped by `stop`."""

    def __init__(self, venv, work):
        self.venv = Path(venv)
        self.work = Path(work)
        self.moto = None
        self.proxy = None
        self.moto_port = None
        self.proxy_port = None

    @property
    def endpoint(self):
        """The proxy's URL: what every tool talks to."""
        return f"http://127.0.0.1:{self.proxy_port}"

    def start(self):
        """Starts moto and the proxy and waits until both answer."""
        self.work.mkdir(parents=True, exist_ok=True)
        self.moto_port = free_port()
        env = clean_env()
        env.update(
            MOTO_IAM_LOAD_MANAGED_POLICIES="true",
            MOTO_AMIS_PATH=str(self.venv / "hubform-amis.json"),
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
        )
        log = open(self.work / "moto.log", "wb")
        self.moto = subprocess.Popen(
            [self.venv / "bin/moto_server", "-H", "127.0.0.1",
             "-p", str(self.moto_port)],
            env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
        )
        self.wait(lambda: http(f"{self.moto_url}/moto-api/data.json")
                  is not None, "moto_server", self.moto)

        port_file = Path(tempfile.mkdtemp(dir=self.work)) / "proxy.port"
        log = open(self.work / "proxy.log", "wb")
        self.proxy = subprocess.Popen(
            [self.venv / "bin/python", ROOT / "tests/harness/proxy.py",
             "--upstream", self.moto_url, "--port-file", port_file,
             # If the bench dies without stopping them, the proxy stops
             # itself and moto.
             "--exit-with-parent", "--moto-pid", str(self.moto.pid)],
            env=clean_env(), stdout=log, stderr=log,
            stdin=subprocess.DEVNULL,
        )
        self.wait(lambda: port_file.read_text().strip(), "the proxy",
                  self.proxy)
        self.proxy_port = int(port_file.read_text())
        self.wait(lambda: self.control("GET", "health"), "the proxy",
                  self.proxy)
        self.relax()

    @property
    def moto_url(self):
        return f"http://127.0.0.1:{self.moto_port}"

    def wait(self, probe, what, process):
        """Waits up to 30 s until `probe` succeeds."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                sys.exit(f"bench: {what} exited; see {self.work}/*.log")
            try:
                if probe():
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        sys.exit(f"bench: {what} did not start within 30 s; see "
                 f"{self.work}/*.log")

    def control(self, method, name, body=None):
        """A request to the proxy's control routes."""
        return http(f"{self.endpoint}/_proxy/{name}", method, body)

    def relax(self):
        """No `pending` phase after a launch, no Elastic IP quota."""
        self.control("POST", "pending", {"describes": 0})
        self.control("POST", "address-limit", {"limit": None})

    def reset(self):
        """An empty account again (moto keeps its AMI catalogue)."""
        http(f"{self.moto_url}/moto-api/reset", "POST", {})
        self.warm()
        self.control("POST", "reset")
        self.relax()
        self.forget()

    def warm(self):
        """One IAM, STS and EC2 call straight to moto (not counted):
        after a reset moto sets up each service's backend on its first
        call, loading the AWS managed policies and the AMI catalogue,
        which takes seconds that AWS itself never charges and that would
        otherwise be billed to whichever tool runs first."""
        import boto3  # moto's own dependency; slow to import, so here

        def client(service):
            return boto3.session.Session().client(
                service, endpoint_url=self.moto_url, region_name=REGION,
                aws_access_key_id="testing", aws_secret_access_key="testing")

        client("iam").list_groups()
        client("sts").get_caller_identity()
        client("ec2").describe_key_pairs()

    def forget(self):
        """Starts a new count of requests."""
        self.control("POST", "requests/reset")

    def requests(self):
        """Requests since the last `forget`, as a Counter of
        'service:Action'; the workshop lock's calls are counted apart,
        under 'lock'."""
        counts = Counter()
        for r in self.control("GET", "requests"):
            key = "lock" if r.get("lock") else f"{r['service']}:{r['action']}"
            counts[key] += 1
        return counts

    def stop(self):
        """Stops exactly the two processes `start` started."""
        for process in (self.proxy, self.moto):
            if process is None or process.poll() is not None:
                continue
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def clean_env():
    """This process's environment without AWS_, HUBFORM_ and proxy
    settings, so no tool reaches beyond the world by accident."""
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("AWS_", "HUBFORM_", "ANSIBLE_"))
        and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env
