"""Workflow benchmark: wall time and CPU per stage of a whole run, from Snakemake's log and benchmark files.

    python benchmarks/workflow.py run                              # clean results/demo, `snakemake --cores 2`, report
    python benchmarks/workflow.py run --directory /path/to/worktree --keep
    python benchmarks/workflow.py report results/demo --baseline /path/to/old/results/demo
    python benchmarks/workflow.py report results/demo --json
    python benchmarks/workflow.py compare results/demo /path/to/old/results/demo   # which outputs differ

`run` removes `results/{run}/` (and the Punkt models of the run under `resources/punkt/{run}/`; downloaded sources
stay) unless `--keep`, runs `snakemake --cores N` in `--directory` (the repository by default; a git worktree of
another commit runs that commit's code: the workflow puts its own `src/` first on PYTHONPATH), saves Snakemake's
console log as `results/{run}/benchmarks/snakemake.log` and machine facts (CPU model, cores, load average before and
after, date, total user + system CPU of all jobs) as `results/{run}/benchmarks/machine.json`, then reports.

`report` reads a run: every job's rule, start and finish (second resolution) from the Snakemake log, and its CPU
seconds (`cpu_time`), wall seconds (`s`) and peak RSS from its benchmark file (`benchmark:` of the rule; every
rule of the workflow but the downloads has one). A stage is the rule file that defines the rule
(`workflow/rules/{stage}.smk`). Printed per stage and per rule: jobs, wall seconds summed over jobs, CPU seconds,
and the span (first start to last finish). With `--baseline DIR` the same figures of another run side by side.
A run without benchmark files for some rules (an older commit) shows their wall time from the log and `-` for CPU.

`compare` hashes every file of two runs (logs and benchmarks left out) and lists the files that differ or exist in
one run only. Two things are masked first, as they differ between any two runs of different configs or times: the
run's creation time (`provenance.json` `created`, repeated in the browser) and the run's config hash (16 hex digits
stored in every parquet file's metadata: a new config key or a changed default changes it everywhere).

Snakemake's `cpu_time` is the user + system CPU of the job's processes sampled by psutil every 30 s (the last sample
before the job ends), so very short jobs can read 0: the totals of `machine.json` (getrusage of all children) are
exact.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
_RULE = re.compile(r"^(?:local)?rule (\w+):$")
_FIELD = re.compile(r"^    (jobid|benchmark): (.+)$")
_FINISHED = re.compile(r"^Finished jobid: (\d+) \(Rule: (\w+)\)$")


@dataclass
class Job:
    """One job of a run: times in seconds since the epoch (log resolution: 1 s); cpu_s / bench_s / rss_mb from its
    benchmark file (None when the rule has none)."""

    jobid: int
    rule: str
    start: float
    finish: float | None = None
    benchmark: str | None = None
    cpu_s: float | None = None
    bench_s: float | None = None
    rss_mb: float | None = None

    @property
    def wall_s(self) -> float:
        """The benchmark's wall seconds when present (sub-second), else the log's finish - start."""
        if self.bench_s is not None:
            return self.bench_s
        return (self.finish - self.start) if self.finish is not None else 0.0


@dataclass
class Group:
    """Summed figures of a stage or a rule."""

    jobs: int = 0
    wall_s: float = 0.0
    cpu_s: float | None = None
    first: float | None = None
    last: float | None = None
    rules: set[str] = field(default_factory=set)

    def add(self, job: Job) -> None:
        self.jobs += 1
        self.wall_s += job.wall_s
        if job.cpu_s is not None:
            self.cpu_s = (self.cpu_s or 0.0) + job.cpu_s
        self.first = job.start if self.first is None else min(self.first, job.start)
        end = job.finish if job.finish is not None else job.start + job.wall_s
        self.last = end if self.last is None else max(self.last, end)
        self.rules.add(job.rule)

    @property
    def span_s(self) -> float:
        return (self.last - self.first) if self.first is not None and self.last is not None else 0.0


def parse_log(text: str) -> tuple[list[Job], float | None, float | None]:
    """The jobs of a Snakemake console log, and the times of its first and last timestamp."""
    jobs: dict[int, Job] = {}
    stamp: float | None = None
    first = last = None
    pending: dict[str, str] = {}
    rule: str | None = None
    for line in text.splitlines():
        match = _STAMP.match(line.strip())
        if match:
            stamp = dt.datetime.strptime(match.group(1), "%a %b %d %H:%M:%S %Y").timestamp()
            first = stamp if first is None else first
            last = stamp
            rule = None
            continue
        match = _RULE.match(line)
        if match and stamp is not None:
            rule, pending = match.group(1), {}
            continue
        match = _FIELD.match(line)
        if match and rule is not None:
            pending[match.group(1)] = match.group(2).strip()
            if match.group(1) == "jobid":
                jobid = int(pending["jobid"])
                jobs[jobid] = Job(jobid, rule, stamp)  # type: ignore[arg-type]
            elif "jobid" in pending:
                jobs[int(pending["jobid"])].benchmark = pending["benchmark"]
            continue
        match = _FINISHED.match(line.strip())
        if match and stamp is not None and int(match.group(1)) in jobs:
            jobs[int(match.group(1))].finish = stamp
    return [job for job in jobs.values() if job.rule != "all"], first, last


def read_benchmark(path: Path) -> dict[str, float]:
    """The last row of a Snakemake benchmark tsv (s, cpu_time, max_rss, ...) as floats ('-' = missing)."""
    with path.open() as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    out: dict[str, float] = {}
    for key, value in (rows[-1] if rows else {}).items():
        try:
            out[key] = float(value)
        except (TypeError, ValueError):
            pass
    return out


def rule_stages(rules_dir: Path) -> dict[str, str]:
    """rule name -> stage (the rule file's stem) for every `rule X:` in `rules_dir`/*.smk."""
    stages: dict[str, str] = {}
    for path in sorted(rules_dir.glob("*.smk")):
        for match in re.finditer(r"^\s*(?:local)?rule (\w+):", path.read_text(), re.MULTILINE):
            stages[match.group(1)] = path.stem
    return stages


def find_log(results: Path) -> Path:
    """`results/{run}/benchmarks/snakemake.log` (written by `run`), else the newest `.snakemake/log/*.log` of the
    working directory two levels above `results/{run}`."""
    own = results / "benchmarks" / "snakemake.log"
    if own.exists():
        return own
    logs = sorted((results.parent.parent / ".snakemake" / "log").glob("*.snakemake.log"))
    if not logs:
        raise SystemExit(f"{results}: no benchmarks/snakemake.log and no .snakemake/log/*.log next to it; pass --log")
    return logs[-1]


@dataclass
class RunFigures:
    """A run's jobs grouped by stage and rule, its span and machine facts."""

    name: str
    stages: dict[str, Group]
    rules: dict[str, Group]
    span_s: float
    jobs: int
    machine: dict


def load_run(results: Path, log: Path | None, rules_dir: Path) -> RunFigures:
    """Read one run (`results` = `.../results/{run}`)."""
    log = log or find_log(results)
    jobs, first, last = parse_log(log.read_text(errors="replace"))
    base = results.parent.parent
    for job in jobs:
        if job.benchmark:
            path = base / job.benchmark
            if path.exists():
                figures = read_benchmark(path)
                job.cpu_s, job.bench_s = figures.get("cpu_time"), figures.get("s")
                job.rss_mb = figures.get("max_rss")
    stage_of = rule_stages(rules_dir)
    stages: dict[str, Group] = defaultdict(Group)
    rules: dict[str, Group] = defaultdict(Group)
    for job in jobs:
        stages[stage_of.get(job.rule, "?")].add(job)
        rules[job.rule].add(job)
    machine_path = results / "benchmarks" / "machine.json"
    machine = json.loads(machine_path.read_text()) if machine_path.exists() else {}
    span = (last - first) if first is not None and last is not None else 0.0
    return RunFigures(str(results), dict(stages), dict(rules), span, len(jobs), machine)


def _num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def table(title: str, current: dict[str, Group], baseline: dict[str, Group] | None) -> str:
    """A Markdown table of groups (sorted by CPU, then wall, descending), with baseline columns when given."""
    names = sorted(
        set(current) | set(baseline or {}),
        key=lambda n: -((current.get(n) or Group()).cpu_s or (current.get(n) or Group()).wall_s),
    )
    head = [title, "jobs", "wall s", "CPU s", "span s"]
    if baseline is not None:
        head += ["jobs (base)", "wall s (base)", "CPU s (base)", "span s (base)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    totals = [Group(), Group()]
    for name in names:
        row = [name]
        for index, groups in enumerate([current] + ([baseline] if baseline is not None else [])):
            group = groups.get(name)
            if group is None:
                row += ["-"] * 4
                continue
            row += [str(group.jobs), _num(group.wall_s), _num(group.cpu_s), _num(group.span_s)]
            totals[index].jobs += group.jobs
            totals[index].wall_s += group.wall_s
            if group.cpu_s is not None:
                totals[index].cpu_s = (totals[index].cpu_s or 0.0) + group.cpu_s
        lines.append("| " + " | ".join(row) + " |")
    row = ["**all**"]
    for index in range(2 if baseline is not None else 1):
        row += [str(totals[index].jobs), _num(totals[index].wall_s), _num(totals[index].cpu_s), ""]
    lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def report(current: RunFigures, baseline: RunFigures | None, by_rule: bool) -> str:
    """The printed report: run spans, machine facts, the stage table and optionally the rule table."""
    out = []
    for label, run in [("run", current)] + ([("baseline", baseline)] if baseline else []):
        machine = run.machine
        cpu = machine.get("cpu_user_s", 0) + machine.get("cpu_system_s", 0) if machine else None
        out.append(
            f"{label}: {run.name}: {run.jobs} jobs, workflow {run.span_s / 60:.1f} min (log span)"
            + (f", all jobs' CPU {cpu:,.0f} s (user {machine['cpu_user_s']:,.0f} + system "
               f"{machine['cpu_system_s']:,.0f})" if cpu else "")
            + (f"; {machine.get('cpu_model')}, {machine.get('cores')} cores, load "
               f"{machine.get('load_before')} before / {machine.get('load_after')} after, {machine.get('date')}"
               if machine else "")
        )  # fmt: skip
    out.append("")
    out.append(table("stage", current.stages, baseline.stages if baseline else None))
    if by_rule:
        out.append("")
        out.append(table("rule", current.rules, baseline.rules if baseline else None))
    return "\n".join(out)


def machine_facts() -> dict:
    """CPU model, cores, load average and date of this machine."""
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor() or "?"
    return {"cpu_model": model, "cores": os.cpu_count(), "load": [round(x, 2) for x in os.getloadavg()],
            "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}  # fmt: skip


def run_workflow(args: argparse.Namespace) -> Path:
    """Run the workflow in `args.directory`; return its `results/{run}`."""
    directory = Path(args.directory).resolve()
    run_name = args.run
    results = directory / "results" / run_name
    if not args.keep:
        shutil.rmtree(results, ignore_errors=True)
        shutil.rmtree(directory / "resources" / "punkt" / run_name, ignore_errors=True)
    snakemake = args.snakemake or str(Path(sys.executable).with_name("snakemake"))
    command = [snakemake, "--cores", str(args.cores), *args.snakemake_args]
    before = machine_facts()
    usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    print(f"running {' '.join(command)} in {directory} (load {before['load']})", flush=True)
    (results / "benchmarks").mkdir(parents=True, exist_ok=True)
    log_path = results / "benchmarks" / "snakemake.log"  # written as the run goes: `report` works on a partial run
    # the checkout's own code first (an editable install of another checkout would otherwise win in some jobs)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(directory / "src"), os.environ.get("PYTHONPATH"))
                                                       if p)}  # fmt: skip
    with log_path.open("w") as handle:
        returncode = subprocess.run(command, cwd=directory, stdout=handle, stderr=subprocess.STDOUT, env=env).returncode
    elapsed = time.time() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    if returncode:
        print(log_path.read_text()[-3000:])
        raise SystemExit(f"snakemake failed (exit {returncode}); log in {log_path}")
    after = machine_facts()
    machine = {
        "cpu_model": before["cpu_model"], "cores": before["cores"], "date": before["date"],
        "load_before": before["load"], "load_after": after["load"], "wall_s": round(elapsed, 1),
        "cpu_user_s": round(usage.ru_utime - usage_before.ru_utime, 1),
        "cpu_system_s": round(usage.ru_stime - usage_before.ru_stime, 1),
        "command": " ".join(command[1:]),
    }  # fmt: skip
    (results / "benchmarks" / "machine.json").write_text(json.dumps(machine, indent=1) + "\n")
    return results


def masked_digests(results: Path) -> dict[str, str]:
    """sha256 of every file under `results` but logs/ and benchmarks/, with the run's creation time and config hash
    (from provenance.json) masked."""
    import hashlib

    provenance = results / "provenance.json"
    masks: list[bytes] = []
    if provenance.exists():
        facts = json.loads(provenance.read_text())
        masks = [str(facts.get(key, "")).encode() for key in ("created", "config_hash") if facts.get(key)]
    digests = {}
    for path in sorted(p for p in results.rglob("*") if p.is_file()):
        relative = path.relative_to(results)
        if relative.parts[0] in ("logs", "benchmarks"):
            continue
        data = path.read_bytes()
        for mask in masks:
            data = data.replace(mask, b"<masked>")
        digests[str(relative)] = hashlib.sha256(data).hexdigest()
    return digests


def compare_runs(current: Path, baseline: Path) -> str:
    """The files that differ between two runs (masked digests), grouped by top-level folder."""
    ours, theirs = masked_digests(current), masked_digests(baseline)
    differ = sorted(name for name in set(ours) & set(theirs) if ours[name] != theirs[name])
    only_ours, only_theirs = sorted(set(ours) - set(theirs)), sorted(set(theirs) - set(ours))
    same = len(set(ours) & set(theirs)) - len(differ)
    lines = [f"{same} files identical (creation time and config hash masked), {len(differ)} differ, "
             f"{len(only_ours)} only in {current}, {len(only_theirs)} only in {baseline}"]  # fmt: skip
    for title, names in (("differ", differ), (f"only in {current}", only_ours), (f"only in {baseline}", only_theirs)):
        if names:
            lines.append(f"{title}:")
            lines += [f"  {name}" for name in names]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the workflow, then report")
    run.add_argument("--directory", default=str(REPO), help="the checkout to run in (default: this repository)")
    run.add_argument("--run", default="demo", help="the config's run name (results/{run})")
    run.add_argument("--cores", type=int, default=2)
    run.add_argument("--keep", action="store_true", help="keep existing results (default: remove results/{run})")
    run.add_argument("--snakemake", help="the snakemake executable (default: next to this Python)")
    run.add_argument("snakemake_args", nargs="*", help="more snakemake arguments (after --)")
    rep = sub.add_parser("report", help="report an existing run")
    rep.add_argument("results", help="results/{run} of the run")
    rep.add_argument("--log", help="its Snakemake console log (default: benchmarks/snakemake.log or .snakemake/log)")
    cmp = sub.add_parser("compare", help="list the output files that differ between two runs")
    cmp.add_argument("results", help="results/{run} of one run")
    cmp.add_argument("baseline", help="results/{run} of the other")
    for command in (run, rep):
        command.add_argument("--baseline", help="results/{run} of another run, shown side by side")
        command.add_argument("--baseline-log", help="the baseline's Snakemake console log")
        command.add_argument("--rules", action="store_true", help="also a table per rule")
        command.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    rules_dir = REPO / "workflow" / "rules"
    if args.command == "compare":
        print(compare_runs(Path(args.results).resolve(), Path(args.baseline).resolve()))
        return
    if args.command == "run":
        results, log = run_workflow(args), None
        rules_dir = Path(args.directory).resolve() / "workflow" / "rules"
    else:
        results, log = Path(args.results).resolve(), Path(args.log) if args.log else None
    current = load_run(results, log, rules_dir)
    baseline = None
    if args.baseline:
        base = Path(args.baseline).resolve()
        base_rules = base.parent.parent / "workflow" / "rules"
        baseline = load_run(base, Path(args.baseline_log) if args.baseline_log else None,
                            base_rules if base_rules.exists() else rules_dir)  # fmt: skip
    if args.json:
        print(json.dumps({"run": _figures_json(current), "baseline": _figures_json(baseline)}, indent=1))
    else:
        print(report(current, baseline, args.rules))


def _figures_json(run: RunFigures | None) -> dict | None:
    if run is None:
        return None

    def groups(items: dict[str, Group]) -> dict:
        return {k: {**asdict(g), "rules": sorted(g.rules), "span_s": g.span_s} for k, g in items.items()}

    return {"name": run.name, "span_s": run.span_s, "jobs": run.jobs, "machine": run.machine,
            "stages": groups(run.stages), "rules": groups(run.rules)}  # fmt: skip


if __name__ == "__main__":
    main()
