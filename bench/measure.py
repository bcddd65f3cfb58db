"""Timing whole processes: wall time from a monotonic clock around the
child's whole life, peak memory from GNU time (the kernel's accounting of
the finished child), and the AWS requests the world counted."""

import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field


@dataclass
class Run:
    """One finished run of a command."""

    wall: float  # seconds
    rss_mb: float  # peak resident set of the child, MB
    cpu: float  # user + system seconds of the child and what it waited for
    code: int
    requests: dict  # 'service:Action' -> count


@dataclass
class Sample:
    """The counted runs of one command (warm-ups are not kept)."""

    name: str
    runs: list = field(default_factory=list)

    def walls(self):
        return [r.wall for r in self.runs]

    def wall(self):
        """Median wall seconds."""
        return statistics.median(self.walls())

    def spread(self):
        """(min, max) wall seconds."""
        return min(self.walls()), max(self.walls())

    def cpu(self):
        """Median CPU seconds."""
        return statistics.median(r.cpu for r in self.runs)

    def rss(self):
        """Median and max peak RSS in MB."""
        rss = [r.rss_mb for r in self.runs]
        return statistics.median(rss), max(rss)

    def requests(self):
        """The requests of the first counted run, and whether every run
        made the same ones."""
        first = self.runs[0].requests
        return first, all(r.requests == first for r in self.runs)

    def total(self, lock=False):
        """Requests of the first run; the workshop lock's only if asked."""
        first, _ = self.requests()
        return sum(n for k, n in first.items() if lock or k != "lock")

    def codes(self):
        return sorted({r.code for r in self.runs})


# GNU time reports its child's peak RSS. The bench cannot read it itself:
# a child inherits the peak of the process that forked it (Linux keeps it
# across exec), and the bench's Python is bigger than some of the tools.
TIME = shutil.which("time", path="/usr/bin:/bin")


def run(argv, env, cwd, log, world):
    """Runs `argv` once to the end, its output appended to `log`, and
    returns its Run with the requests the world counted meanwhile."""
    argv = [str(a) for a in argv]
    world.forget()
    with open(log, "ab") as out, tempfile.NamedTemporaryFile() as peak:
        out.write(f"\n$ {' '.join(argv)}\n".encode())
        out.flush()
        if TIME:
            argv = [TIME, "-f", "%M %U %S", "-o", peak.name, *argv]
        start = time.monotonic()
        code = subprocess.run(
            argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        ).returncode
        wall = time.monotonic() - start
        out.write(f"[exit {code}, {wall:.3f} s]\n".encode())
        rss_mb, cpu = usage(peak.read()) if TIME else (NAN, NAN)
    return Run(wall, rss_mb, cpu, code, dict(world.requests()))


NAN = float("nan")


def usage(text):
    """Peak RSS in MB (the targets' unit) and CPU seconds from GNU time's
    last line, '%M %U %S' (KiB, seconds, seconds)."""
    lines = text.decode().strip().splitlines()
    try:
        kib, user, system = lines[-1].split()
        return int(kib) * 1024 / 1e6, float(user) + float(system)
    except (IndexError, ValueError):
        return NAN, NAN


def paired_ratios(a, b):
    """The ratio a/b of each pair of runs taken in the same round."""
    return [x.wall / y.wall for x, y in zip(a.runs, b.runs)]


def median(values):
    return statistics.median(values)
