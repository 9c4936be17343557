"""Failed jobs on the console: the Snakefile's `onerror:` handler prints each failed job's own error message.

Snakemake reports a failed job as ``Error in rule <name>:`` followed by indented fields, one of them
``log: <path>[, <path>] (check log file(s) for error details)``; the job's exception (the package's message naming
the config key or file and the fix) is only in that log file. `failed_job_logs` parses Snakemake's own log for those
blocks, `error_summary` reads each job log's last exception, and `report_failures` prints both to stderr.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TextIO

ERROR_IN_RULE = re.compile(r"^Error in rule (\S+?):\s*$")
LOG_FIELD = re.compile(r"^\s+log: (.+?)(?: \(check log file\(s\) for error details\))?\s*$")
TRACEBACK = "Traceback (most recent call last):"


@dataclass(frozen=True)
class FailedJob:
    """One failed job: its rule, wildcards as Snakemake printed them (may be empty) and its log files."""

    rule: str
    wildcards: str
    logs: tuple[str, ...]


def failed_job_logs(snakemake_log: str) -> list[FailedJob]:
    """The failed jobs named in the text of a Snakemake log, in order, each once."""
    jobs: list[FailedJob] = []
    rule, wildcards, logs = None, "", ()
    for line in snakemake_log.splitlines() + [""]:
        started = ERROR_IN_RULE.match(line)
        if started or (rule is not None and line and not line[0].isspace()):
            if rule is not None:
                jobs.append(FailedJob(rule, wildcards, logs))
            rule, wildcards, logs = (started.group(1), "", ()) if started else (None, "", ())
            continue
        if rule is None:
            continue
        field = LOG_FIELD.match(line)
        if field:
            logs = tuple(path.strip() for path in field.group(1).split(",") if path.strip())
        elif line.strip().startswith("wildcards:"):
            wildcards = line.strip()[len("wildcards:") :].strip()
    unique: dict[FailedJob, None] = dict.fromkeys(jobs)
    return list(unique)


def error_summary(log_text: str, max_lines: int = 12) -> str:
    """The exception a job raised (the lines after its last traceback's frames), else the log's last lines."""
    lines = log_text.rstrip().splitlines()
    if TRACEBACK in lines:
        start = len(lines) - 1 - lines[::-1].index(TRACEBACK)
        tail = [line for line in lines[start + 1 :] if line and not line.startswith((" ", "\t"))]
        if tail:
            return "\n".join(tail[-max_lines:])
    return "\n".join(lines[-max_lines:])


def scheduler_failed_jobs(workflow: Any) -> list[FailedJob]:
    """The failed jobs Snakemake's scheduler holds (`workflow.scheduler.failed`), sorted; empty when unavailable."""
    try:
        failed = list(workflow.scheduler.failed)
    except AttributeError:
        return []
    jobs = []
    for job in failed:
        try:
            wildcards = ", ".join(f"{key}={value}" for key, value in dict(job.wildcards).items())
            jobs.append(FailedJob(str(job.rule.name), wildcards, tuple(str(path) for path in job.log)))
        except (AttributeError, TypeError):
            continue
    return sorted(set(jobs), key=lambda job: (job.rule, job.wildcards))


def report_failures(
    snakemake_logs: Iterable[str | os.PathLike[str]], workflow: Any = None, stream: TextIO | None = None
) -> int:
    """Print each failed job's error message (from its log file) to `stream` (stderr); return how many.

    The failed jobs come from `workflow`'s scheduler when given, else (and in addition) from the ``Error in rule``
    blocks of Snakemake's own log files `snakemake_logs` (absent with ``--quiet rules``)."""
    stream = stream or sys.stderr
    jobs: list[FailedJob] = scheduler_failed_jobs(workflow) if workflow is not None else []
    for path in snakemake_logs:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                jobs += [job for job in failed_job_logs(handle.read()) if job not in jobs]
        except OSError:
            continue
    for job in jobs:
        name = f"{job.rule} ({job.wildcards})" if job.wildcards else job.rule
        print(f"\n=== failed: {name}", file=stream)
        for log in job.logs:
            try:
                with open(log, encoding="utf-8", errors="replace") as handle:
                    summary = error_summary(handle.read())
            except OSError as error:
                summary = f"(cannot read the log: {error.strerror})"
            print(f"{summary or '(the log is empty)'}\n    (full log: {log})", file=stream)
    if jobs:
        print("\nFix the cause above, then run the same command again (finished jobs are kept).", file=stream)
    return len(jobs)


WARNING_LINE = re.compile(r" WARNING (neurotext[\w.]*): (.*)$")


def job_warnings(log_dir: str | os.PathLike[str], since: float) -> list[str]:
    """'<logger>: <message>' of every neurotext warning in the job logs under `log_dir` written at or after `since`
    (seconds since the epoch), each once, in file order."""
    found: dict[str, None] = {}
    for root, _, files in sorted(os.walk(log_dir)):
        for name in sorted(files):
            path = os.path.join(root, name)
            try:
                if not name.endswith(".log") or os.path.getmtime(path) < since:
                    continue
                with open(path, encoding="utf-8", errors="replace") as handle:
                    for line in handle:
                        match = WARNING_LINE.search(line.rstrip("\n"))
                        if match:
                            found[f"{match[1]}: {match[2]}"] = None
            except OSError:
                continue
    return list(found)


def report_warnings(log_dir: str | os.PathLike[str], since: float, stream: TextIO | None = None) -> int:
    """Print the warnings of this run's jobs (`job_warnings`) to `stream` (stderr); return how many."""
    stream = stream or sys.stderr
    warnings = job_warnings(log_dir, since)
    for warning in warnings:
        print(f"neurotext: warning from a job: {warning}", file=stream)
    return len(warnings)

