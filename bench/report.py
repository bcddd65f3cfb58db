"""The bench's table: each figure with its spread, its requests, its
ratio to what it is compared with, and the target beside it."""

from measure import median, paired_ratios

# The targets of issue 6.
COLD_VS_AWSCLI = 5.0  # hubform's cold apply at least 5x faster
NOOP_VS_ANSIBLE = 50.0  # no-op plan at least 50x faster than --check
NOOP_VS_FLOOR = 1.5  # no-op plan at most 1.5x the floor
NOOP_REQUESTS = 8  # requests per no-op plan
DRIFT_50_VS_1 = 2.0  # drift over 50 specs at most 2x drift over one
PLAN_RSS_MB = 60.0  # peak memory of hubform plan


def seconds(x):
    return f"{x:.3f}" if x < 10 else f"{x:.1f}"


def wall(sample):
    low, high = sample.spread()
    return f"{seconds(sample.wall())} ({seconds(low)}-{seconds(high)})"


def requests(sample):
    counts, same = sample.requests()
    text = str(sample.total())
    if counts.get("lock"):
        text += f" +{counts['lock']} lock"
    return text if same else text + " (varied)"


def verdict(ok):
    return "met" if ok else "MISSED"


class Table:
    """Rows of fixed-width columns."""

    WIDTHS = (28, 24, 8, 13, 7, 21)

    def __init__(self):
        self.lines = []

    def heading(self, text):
        self.lines += ["", text]

    def row(self, *cells):
        cells = list(cells) + [""] * (7 - len(cells))
        text = "  " + "".join(
            str(c).ljust(w) for c, w in zip(cells, self.WIDTHS))
        self.lines.append((text + str(cells[6])).rstrip())

    def note(self, text):
        self.lines.append(f"    {text}")


def sample_row(table, sample, ratio="", target=""):
    rss, _ = sample.rss()
    table.row(sample.name, wall(sample), f"{sample.cpu():.2f}",
              requests(sample), f"{rss:.0f}", ratio, target)
    if sample.codes() != [0] and not sample.name.startswith("drift"):
        table.note(f"exit codes {sample.codes()}: see its log")


def table(results, peers):
    t = Table()
    t.lines.append(f"hubform bench: {results['machine']}; hubform "
                   f"{results['build']} build; median of {results['runs']} "
                   f"runs after 1 warm-up")
    t.lines.append("")
    t.row("", "wall s median (min-max)", "cpu s", "AWS requests",
          "RSS MB", "ratio", "target")
    if "cold" in results:
        cold_rows(t, results["cold"], peers)
    if "noop" in results:
        noop_rows(t, results["noop"], peers, results.get("host_skipped"))
    if "fleet" in results:
        fleet_rows(t, results["fleet"])
    if "noop" in results:
        rss_rows(t, results["noop"][0])
    for warning in results.get("warnings", []):
        t.lines.append(f"WARNING: {warning}")
    return "\n".join(t.lines)


def cold_rows(t, samples, peers):
    t.heading("Cold apply of the example workshop (AWS part), empty account")
    hubform = samples[0]
    sample_row(t, hubform)
    if not peers:
        t.note("peers skipped (no --peers)")
        return
    awscli, ansible = samples[1], samples[2]
    r = median(paired_ratios(awscli, hubform))
    sample_row(t, awscli, f"hubform {r:.1f}x faster",
               f">= {COLD_VS_AWSCLI:g}x: {verdict(r >= COLD_VS_AWSCLI)}")
    r = median(paired_ratios(ansible, hubform))
    sample_row(t, ansible, f"hubform {r:.1f}x faster")


def noop_rows(t, samples, peers, host_skipped):
    t.heading("No-op plan of the example workshop (AWS part)")
    by_name = {s.name: s for s in samples}
    plan = by_name["hubform plan"]
    floor = by_name["floor (same calls at once)"]
    n = plan.total()
    sample_row(t, plan, "", f"<= {NOOP_REQUESTS} req: "
               f"{verdict(n <= NOOP_REQUESTS)}")
    r = median(paired_ratios(plan, floor))
    sample_row(t, floor, f"plan {r:.2f}x this",
               f"<= {NOOP_VS_FLOOR:g}x: {verdict(r <= NOOP_VS_FLOOR)}")
    if peers:
        check = by_name["ansible-playbook --check"]
        r = check.wall() / plan.wall()
        sample_row(t, check, f"plan {r:.0f}x faster",
                   f">= {NOOP_VS_ANSIBLE:g}x: {verdict(r >= NOOP_VS_ANSIBLE)}")
    probe = by_name.get("hubform plan + host probe")
    if probe is None:
        t.note(f"host probe: skipped ({host_skipped})")
        return
    costs = [a.wall - b.wall for a, b in zip(probe.runs, plan.runs)]
    sample_row(t, probe, f"probe {median(costs) * 1000:.0f} ms")
    t.note("the whole example (tljh block too) on a plain SSH test host: "
           "the probe is one SSH login and one command")


def fleet_rows(t, samples):
    t.heading("Fleet drift: 50 workshops in one account")
    half = len(samples) // 2
    drifts, floors = samples[:half], samples[half:]
    one, last = drifts[0], drifts[-1]
    for drift, floor in zip(drifts, floors):
        if drift is last:
            r = median(paired_ratios(last, one))
            sample_row(t, drift, f"{r:.2f}x over 1",
                       f"<= {DRIFT_50_VS_1:g}x: {verdict(r <= DRIFT_50_VS_1)}")
        else:
            sample_row(t, drift)
        if drift.codes() != [0]:
            t.note(f"exit codes {drift.codes()} (2 = drift found, 1 = "
                   "error): see its log")
        r = median(paired_ratios(drift, floor))
        sample_row(t, floor, f"drift {r:.2f}x this")
    r = median(paired_ratios(floors[-1], floors[0]))
    t.note(f"the floor itself: {r:.2f}x over 50 workshops as over 1 "
           "(the stand-in's share)")
    per_kind_rows(t, one, last)


def per_kind_rows(t, one, last):
    """The requests of drift over one and over all, kind by kind."""
    few, _ = one.requests()
    many, _ = last.requests()
    grows = [k for k in many if many[k] > few.get(k, 0)]
    t.note(f"requests per kind, not per workshop: {verdict(not grows)}")
    for kind, n in sorted(many.items()):
        growth = f" (over 1: {few.get(kind, 0)})" if kind in grows else ""
        t.note(f"  {kind}: {n}{growth}")


def rss_rows(t, plan):
    t.heading("Peak memory")
    rss, high = plan.rss()
    t.row("hubform plan (max of runs)", "", "", "", f"{high:.0f}", "",
          f"<= {PLAN_RSS_MB:g} MB: {verdict(high <= PLAN_RSS_MB)}")


def as_json(results):
    """Every run of every sample, for later comparison."""
    out = {k: v for k, v in results.items()
           if k in ("machine", "build", "runs", "host_skipped", "warnings")}
    for part in ("cold", "noop", "fleet"):
        if part in results:
            out[part] = {
                s.name: [vars(r) for r in s.runs] for s in results[part]
            }
    return out
