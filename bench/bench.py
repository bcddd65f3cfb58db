"""hubform's bench: hubform side by side with the peers (the manual's AWS
CLI script and an Ansible playbook) against one local moto, in one run.
Run it through scripts/bench, which builds hubform and the floor first;
docs/benchmarks.md says what each row means.
"""

import argparse
import concurrent.futures
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import measure
import report
import specs
from host import TestHost
from measure import Sample
from world import ROOT, World, clean_env

WORKSHOP = "groundwater-central-asia"
IMAGE_OWNER = "099720109477"
IMAGE_PATTERN = "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*"
FLEET_SIZES = (1, 10, 50)


def arguments():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hubform", required=True, help="the hubform binary")
    p.add_argument("--floor", required=True, help="the floor binary")
    p.add_argument("--build", default="?", help="the build profile, shown")
    p.add_argument("--peers", help="the peers' folder (awscli-apply.sh, "
                   "ansible/site.yml); without it the peers are skipped")
    p.add_argument("--peers-venv", help="their venv (aws, ansible-playbook)")
    p.add_argument("--venv", default=str(ROOT / ".venv"),
                   help="the venv of tests/harness/setup.sh (moto)")
    p.add_argument("--runs", type=int, default=5, help="counted runs each")
    p.add_argument("--out", default=str(ROOT / ".hubform-dev/bench"),
                   help="folder for logs, specs and results")
    p.add_argument("--only", default="cold,noop,fleet",
                   help="parts to run, of cold,noop,fleet")
    return p.parse_args()


class Bench:
    """The tools, the world and where each run's files go."""

    def __init__(self, args, world):
        self.args = args
        self.world = world
        self.out = Path(args.out)
        self.runs = args.runs
        self.peers = Path(args.peers) if args.peers else None
        self.peers_venv = Path(args.peers_venv) if args.peers_venv else None
        self.host_skipped = "not run"
        self.warnings = []

    # ----------------------------------------------------------- commands

    def hubform_env(self, home):
        """What a user of a local stand-in sets, and no more: retries,
        waits and polls keep their defaults."""
        env = clean_env()
        env.update(
            AWS_ENDPOINT_URL=self.world.endpoint,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_EC2_METADATA_DISABLED="true",
            AWS_CONFIG_FILE="/dev/null",
            AWS_SHARED_CREDENTIALS_FILE="/dev/null",
            HOME=str(home),
            HUBFORM_LOOPBACK_ONLY="1",
            NO_COLOR="1",
        )
        return env

    def peers_env(self, keys):
        """The peers' dummy settings, their venv first on PATH."""
        env = clean_env()
        env.update(
            PATH=f"{self.peers_venv}/bin:{env.get('PATH', '')}",
            PEERS_VENV=str(self.peers_venv),
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION="ap-south-1",
            AWS_REGION="ap-south-1",
            AWS_CONFIG_FILE="/dev/null",
            AWS_SHARED_CREDENTIALS_FILE="/dev/null",
            AWS_PAGER="",
            AWS_EC2_METADATA_DISABLED="true",
            ANSIBLE_CONFIG=str(self.peers / "ansible/ansible.cfg"),
            ANSIBLE_NOCOLOR="1",
            KEY_DIR=str(keys),
        )
        return env

    def fresh(self, name):
        """An empty folder under the output folder."""
        folder = self.out / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        return folder

    def hubform_apply(self, spec):
        folder = spec.parent
        return ([self.args.hubform, "apply", "--auto-approve", spec],
                self.hubform_env(folder), folder)

    def awscli_apply(self, keys):
        return ([self.peers / "awscli-apply.sh", self.world.endpoint],
                self.peers_env(keys), keys)

    def ansible(self, keys, *extra):
        playbook = self.peers / "ansible/site.yml"
        return ([self.peers_venv / "bin/ansible-playbook", playbook,
                 "-e", f"aws_endpoint={self.world.endpoint}", *extra],
                self.peers_env(keys), keys)

    def one(self, command, log, sample=None):
        """Runs `command` (argv, env, cwd) once, into `sample` if given."""
        argv, env, cwd = command
        run = measure.run(argv, env, cwd, self.out / log, self.world)
        if sample is not None:
            sample.runs.append(run)
        return run

    def must(self, command, log):
        """Runs a set-up step; stops the bench if it fails."""
        run = self.one(command, log)
        if run.code != 0:
            sys.exit(f"bench: a set-up step failed (exit {run.code}); see "
                     f"{self.out / log}")
        return run

    # ---------------------------------------------------------- the parts

    def cold(self):
        """Cold apply of the example's AWS part on an empty account, the
        tools in turn in each round, one warm-up round."""
        samples = [Sample("hubform apply")]
        if self.peers:
            samples += [Sample("awscli script"), Sample("ansible-playbook")]
        for round_ in range(self.runs + 1):
            kept = round_ > 0
            for sample in samples:
                self.world.reset()
                command = self.cold_command(sample.name)
                self.one(command, f"cold-{sample.name.split()[0]}.log",
                         sample if kept else None)
        return samples

    def cold_command(self, name):
        if name == "hubform apply":
            folder = self.fresh("cold/hubform")
            spec = folder / "workshop.yaml"
            spec.write_text(specs.example_aws_part())
            return self.hubform_apply(spec)
        if name == "awscli script":
            return self.awscli_apply(self.fresh("cold/awscli"))
        return self.ansible(self.fresh("cold/ansible"))

    def noop(self):
        """No-op plans: hubform plan and the floor in turn on hubform's
        workshop (with the host probe's plan when a test host can run),
        then Ansible's check mode on Ansible's."""
        self.world.reset()
        folder = self.fresh("noop/hubform")
        spec = folder / "workshop.yaml"
        spec.write_text(specs.example_aws_part())
        host = self.lend_host(folder)
        try:
            self.must(self.hubform_apply(spec), "noop-setup.log")
            samples = self.hubform_noop(folder, spec, host)
        finally:
            if host:
                host.stop(self.out / "host.log")

        if self.peers:
            self.world.reset()
            keys = self.fresh("noop/ansible")
            self.must(self.ansible(keys), "noop-setup.log")
            check = Sample("ansible-playbook --check")
            for round_ in range(self.runs + 1):
                self.one(self.ansible(keys, "--check", "--diff"),
                         "noop-ansible.log", check if round_ > 0 else None)
            self.expect("noop-ansible.log", " changed=0 ")
            samples.append(check)
        return samples

    def lend_host(self, folder):
        """A test host whose login key is the workshop's key pair file,
        so that a plan of the whole example can probe it; None when no
        test host can run here."""
        self.host_skipped = TestHost.possible()
        if self.host_skipped:
            return None
        host = TestHost(self.out / "host")
        host.start(self.out / "host.log")
        keys = folder / "keys"
        keys.mkdir()
        key = keys / "workshop-central-asia.pem"
        shutil.copyfile(host.login_key, key)
        key.chmod(0o400)
        return host

    def hubform_noop(self, folder, spec, host):
        """hubform plan, the floor and, with a host, the whole example's
        plan, in turn."""
        env = self.hubform_env(folder)
        commands = [
            (Sample("hubform plan"), "plan",
             [self.args.hubform, "plan", spec]),
            (Sample("floor (same calls at once)"), "floor",
             self.floor([WORKSHOP], ["ec2-admin"], folder)[0]),
        ]
        if host:
            whole = folder / "whole.yaml"
            whole.write_text(specs.EXAMPLE.read_text())
            commands.append((
                Sample("hubform plan + host probe"), "probe",
                [self.args.hubform, "plan", "--ssh-endpoint", host.endpoint,
                 whole]))
        for round_ in range(self.runs + 1):
            for sample, slug, argv in commands:
                self.one((argv, env, folder), f"noop-{slug}.log",
                         sample if round_ > 0 else None)
        self.expect("noop-plan.log", "No changes.")
        return [sample for sample, _, _ in commands]

    def expect(self, log, text):
        """Warns unless every run logged in `log` printed `text`: a no-op
        that changes something would measure the wrong thing."""
        runs = (self.out / log).read_text().count("\n$ ")
        said = (self.out / log).read_text().count(text)
        if said < runs:
            self.warnings.append(
                f"{log}: {runs - said} of {runs} runs did not print {text!r}")

    def fleet(self):
        """Drift over 1, 10 and 50 workshops of one account, in turn in
        each round."""
        self.world.reset()
        folder = self.fresh("fleet")
        paths = specs.write_fleet(folder, max(FLEET_SIZES))
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            done = list(pool.map(self.fleet_apply, paths))
        failed = [p for p, code in zip(paths, done) if code != 0]
        if failed:
            sys.exit(f"bench: applying {failed[0]} failed; see "
                     f"{self.out}/fleet-setup.log")

        drifts = [Sample(f"drift over {n}") for n in FLEET_SIZES]
        floors = [Sample(f"floor over {n}") for n in FLEET_SIZES]
        for round_ in range(self.runs + 1):
            kept = round_ > 0
            for n, drift, floor in zip(FLEET_SIZES, drifts, floors):
                command = ([self.args.hubform, "drift", *paths[:n]],
                           self.hubform_env(folder), folder)
                self.one(command, f"fleet-drift-{n}.log",
                         drift if kept else None)
                command = self.floor(
                    [f"fleet-{i:02}" for i in range(1, n + 1)],
                    [f"ec2-admin-{i:02}" for i in range(1, n + 1)], folder)
                self.one(command, f"fleet-floor-{n}.log",
                         floor if kept else None)
        return drifts + floors

    def floor(self, workshops, users, folder):
        """The floor's command for these workshops and IAM users."""
        return ([self.args.floor, "ap-south-1", ",".join(workshops),
                 ",".join(users), IMAGE_OWNER, IMAGE_PATTERN],
                self.hubform_env(folder), folder)

    def fleet_apply(self, spec):
        """Applies one fleet spec; the world's request count is not
        touched (applies run side by side)."""
        argv, env, cwd = self.hubform_apply(spec)
        with open(self.out / "fleet-setup.log", "ab") as log:
            return subprocess.run([str(a) for a in argv], env=env, cwd=cwd,
                                  stdout=log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL).returncode


def machine():
    """Date, cores, memory and load, for the table's first line."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    load = os.getloadavg()[0]
    return (f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
            f"{platform.machine()}, {os.cpu_count()} cores, "
            f"{memory / 2**30:.0f} GiB, load {load:.1f} at start")


def main():
    args = arguments()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for log in out.glob("*.log"):
        log.unlink()
    if args.peers and not args.peers_venv:
        sys.exit("bench: --peers needs --peers-venv")

    world = World(args.venv, out / "world")
    parts = set(args.only.split(","))
    results = {"machine": machine(), "build": args.build, "runs": args.runs}
    try:
        world.start()
        bench = Bench(args, world)
        for part in ("cold", "noop", "fleet"):
            if part in parts:
                print(f"bench: {part}…", file=sys.stderr, flush=True)
                results[part] = getattr(bench, part)()
        results["host_skipped"] = bench.host_skipped
        results["warnings"] = bench.warnings
    finally:
        world.stop()

    table = report.table(results, peers=bool(args.peers))
    print(table)
    (out / "table.txt").write_text(table + "\n")
    (out / "results.json").write_text(
        json.dumps(report.as_json(results), indent=1) + "\n")
    print(f"\nlogs and results.json in {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
