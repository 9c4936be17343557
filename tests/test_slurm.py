"""The profiles on real schedulers: profiles/workstation locally, profiles/slurm on a real single-node SLURM.

The SLURM tests (marker `slurm`) start SLURM themselves with tools/slurm-single-node.sh (Debian's slurm-wlm with
slurmdbd + MariaDB so `sacct` works, partitions `cpu` and `gpu`, two fake GPUs), so `make test` on a fresh
root machine runs them; they are skipped, with the reason, only where the tests do not run as root. They use
profiles/slurm unchanged, with two command-line settings for the test cluster: status checks 2 s after submission
(`--slurm-init-seconds-before-status-checks 2`) and no account. Every snakemake call has a hard timeout that
kills it and cancels its SLURM jobs, since a wrong status command makes Snakemake wait forever.

- the tiny test config (config/test.yaml, with resources.gpu = 1) through SLURM ends with the same bytes as a local
  run; the rules whose `gpu` is the config's (scan_shard, sample_activations, records_layers, finetune_*) get
  `--gpus=1` on the GPU partition, every other job no GPU on the CPU partition;
- a probe workflow (tests/data/slurm/Snakefile): a rule that fails once is retried and succeeds; a rule killed by
  SLURM at its time limit leaves no partial output and its rerun succeeds; a GPU rule with gpu = 0 asks for no GPU;
- bad input: a missing partition, or more memory than the node has: SLURM's error reaches the user with the rule's
  name and its log path;
- profiles/workstation (no SLURM, runs anywhere): GPU jobs queue on the one GPU it declares.

Time (shared 2-core machine, load 5-9): SLURM up in 14 s on a fresh machine (apt), 0.2 s when already up; the probe
(1-2 min, mostly SLURM's smallest time limit, 1 min) runs beside the local pipeline run (2.5-5 min; that run is the
session's shared end-to-end run, `e2e_run` in tests/conftest.py, made once for this file and tests/test_workflow.py);
then the SLURM pipeline run (7-13 min for 44-58 jobs: each job pays two Snakemake start-ups, ~7 s). Whole file:
10-18 min here.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tools" / "slurm-single-node.sh"
SLURM_PROFILE = REPO / "profiles" / "slurm"
WORKSTATION_PROFILE = REPO / "profiles" / "workstation"
PROBE = REPO / "tests" / "data" / "slurm" / "Snakefile"
GPU_QUEUE = REPO / "tests" / "data" / "slurm" / "gpu_queue.smk"
TEST_CONFIG = REPO / "config" / "test.yaml"

# Test-cluster settings on top of the profile: status checks soon after submission, no account to guess.
TEST_CLUSTER_ARGS = ("--slurm-init-seconds-before-status-checks", "2", "--slurm-no-account")
PIPELINE_TIMEOUT_S = 1800  # hard limit for one pipeline run (2.5-13 min here, with other work on the machine)
PROBE_TIMEOUT_S = 600  # hard limit for the probe (about 1.5-3 min: the time limit is 1 min, SLURM's smallest)
ENV = {**os.environ, "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"}


# ----------------------------------------------------------------------------------------------------------- helpers
@dataclass(frozen=True)
class SnakemakeRun:
    """A finished snakemake call: its exit status, its output (stdout and stderr) and its SLURM run id."""

    returncode: int
    output: str

    @property
    def run_id(self) -> str | None:
        """The SLURM plugin's run id: every SLURM job of the run has it as its job name."""
        match = re.search(r"SLURM run ID: (\S+)", self.output)
        return match[1] if match else None


@dataclass(frozen=True)
class SlurmJob:
    """One SLURM job as sacct reports it."""

    job_id: str
    partition: str
    comment: str
    state: str
    alloc_tres: str

    @property
    def rule(self) -> str:
        """The Snakemake rule, from the plugin's job comment `rule_<name>[_wildcards_<values>]`."""
        match = re.fullmatch(r"rule_(?P<rule>.+?)(_wildcards_.*)?", self.comment)
        return match["rule"] if match else ""

    @property
    def gpus(self) -> int:
        """GPUs SLURM allocated (AllocTRES gres/gpu=N; the test cluster accounts for gres/gpu)."""
        match = re.search(r"gres/gpu=(\d+)", self.alloc_tres)
        return int(match[1]) if match else 0


def snakemake_command(snakefile: Path, workdir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(snakefile), "-d", str(workdir), *args]


def cancel_jobs_of(output: str) -> None:
    """Cancel the SLURM jobs of a run that was killed (the run id is in its output)."""
    run_id = SnakemakeRun(1, output).run_id
    if run_id and shutil.which("scancel"):
        subprocess.run(["scancel", "--name", run_id], capture_output=True, timeout=30)


class WatchedProcess:
    """A snakemake process in its own session, judged by its own clock: a thread drains its output (so a full pipe
    never stalls it) and notes when it exits, so a process that finished in time passes however late the test asks
    for its result."""

    def __init__(self, command: list[str], cwd: Path) -> None:
        self.started = time.monotonic()
        self.ended: float | None = None
        self.process = subprocess.Popen(command, cwd=cwd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, start_new_session=True)  # fmt: skip
        self.chunks: list[str] = []
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()

    def _drain(self) -> None:
        for line in self.process.stdout:
            self.chunks.append(line)
        self.process.wait()
        self.ended = time.monotonic()

    def result(self, limit_s: float) -> SnakemakeRun:
        """The finished run; if it runs past `limit_s` seconds from its own start, kill it (and its SLURM jobs)
        and fail the test."""
        self.reader.join(max(0.0, limit_s - (time.monotonic() - self.started)))
        if self.reader.is_alive():
            os.killpg(self.process.pid, signal.SIGKILL)
            self.reader.join(60)
            output = "".join(self.chunks)
            cancel_jobs_of(output)
            pytest.fail(f"snakemake killed {limit_s:.0f} s after its start (hard timeout):\n{output[-6000:]}")
        return SnakemakeRun(self.process.returncode, "".join(self.chunks))

    @property
    def elapsed_s(self) -> float:
        """Seconds from the process's start to its exit (or to now, while it runs)."""
        return (self.ended or time.monotonic()) - self.started


def run_snakemake(command: list[str], cwd: Path, timeout: float) -> SnakemakeRun:
    """Run snakemake with a hard timeout from its start; on timeout kill it, cancel its SLURM jobs and fail."""
    return WatchedProcess(command, cwd).result(timeout)


def slurm_jobs(run_id: str) -> list[SlurmJob]:
    """Every SLURM job of a run, from sacct (slurmdbd)."""
    result = subprocess.run(
        ["sacct", "-X", "-n", "--parsable2", "--name", run_id, "-S", "now-1days",
         "-o", "JobIDRaw,Partition,Comment,State,AllocTRES"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return [SlurmJob(*line.split("|")[:5]) for line in result.stdout.splitlines() if line.strip()]


def file_digests(root: Path) -> dict[str, str]:
    """sha256 of every result file but logs and benchmarks, with the run's creation time masked.

    provenance.json records when the run was made (`created`), and files built from it (the browser's metadata)
    repeat it: that one timestamp, wherever it appears, is the only difference allowed between two runs.
    """
    created = json.loads((root / "provenance.json").read_text()).get("created", "").encode()
    digests = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root)
        if relative.parts[0] in ("logs", "benchmarks"):
            continue
        data = path.read_bytes()
        digests[str(relative)] = hashlib.sha256(data.replace(created, b"<created>") if created else data).hexdigest()
    return digests


# ------------------------------------------------------------------------------------------------------ the cluster
def start_slurm() -> str | None:
    """Bring the single-node SLURM up (installs it with apt on a fresh machine); the reason to skip, or None."""
    if os.geteuid() != 0:
        return "SLURM tests need root: tools/slurm-single-node.sh installs and starts slurmctld/slurmd (run as root)"
    if not shutil.which("sinfo") and not shutil.which("apt-get"):
        return "SLURM tests need Debian's slurm-wlm: no sinfo and no apt-get to install it"
    result = subprocess.run(["bash", str(SCRIPT), "up"], capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        pytest.fail(f"tools/slurm-single-node.sh up failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return None


@pytest.fixture(scope="module")
def slurm_cluster() -> None:
    reason = start_slurm()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def probe_process(slurm_cluster, tmp_path_factory) -> tuple[WatchedProcess, Path]:
    """The probe workflow through profiles/slurm, started in the background (it spends a minute waiting for SLURM
    to kill a job at its time limit)."""
    workdir = tmp_path_factory.mktemp("probe")
    command = snakemake_command(PROBE, workdir, "--profile", str(SLURM_PROFILE), *TEST_CLUSTER_ARGS,
                                "--config", "gpu=1")  # fmt: skip
    return WatchedProcess(command, workdir), workdir


@pytest.fixture(scope="module")
def probe_run(probe_process) -> tuple[SnakemakeRun, Path]:
    """The probe's result, judged by its own exit and its own elapsed time (PROBE_TIMEOUT_S from its start)."""
    process, workdir = probe_process
    return process.result(PROBE_TIMEOUT_S), workdir


# --------------------------------------------------------------------------------------------------- the pipeline
def prepare_pipeline_workdir(workdir: Path) -> Path:
    """A working directory with the fixtures (tests/ linked), a tiny random BERT and a config asking for GPUs."""
    from neurotext.tinymodel import make_tiny_bert

    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "tests").symlink_to(REPO / "tests")
    make_tiny_bert(workdir / "resources" / "tiny-bert")
    (workdir / "gpu.yaml").write_text("resources:\n  gpu: 1\n")
    return workdir


def pipeline_command(workdir: Path, *args: str) -> list[str]:
    return snakemake_command(REPO / "Snakefile", workdir, "--configfile", str(TEST_CONFIG), str(workdir / "gpu.yaml"),
                             "--quiet", "rules", *args)  # fmt: skip


def require_success(run: SnakemakeRun, workdir: Path) -> None:
    if run.returncode != 0:
        logs = "\n".join(f"--- {p}\n{p.read_text()[-2000:]}" for p in sorted(workdir.glob("results/*/logs/**/*.log")))
        pytest.fail(f"snakemake failed ({run.returncode}):\n{run.output[-8000:]}\n{logs[-8000:]}")


@pytest.fixture(scope="module")
def local_pipeline_run(probe_process, e2e_run) -> Path:
    """The tiny test config run locally: the session's shared end-to-end run (`e2e_run`, tests/conftest.py), made
    with the same config files as the SLURM run (gpu = 1: the config is part of every output's hash)."""
    return e2e_run


@pytest.fixture(scope="module")
def slurm_pipeline_run(probe_run, tmp_path_factory) -> tuple[SnakemakeRun, Path]:
    """The same config through profiles/slurm (after the probe, so the two do not share the node's cores)."""
    workdir = prepare_pipeline_workdir(tmp_path_factory.mktemp("slurm") / "work")
    command = pipeline_command(workdir, "--profile", str(SLURM_PROFILE), *TEST_CLUSTER_ARGS)
    run = run_snakemake(command, workdir, PIPELINE_TIMEOUT_S)
    require_success(run, workdir)
    return run, workdir


# ------------------------------------------------------------------------------------------------------------ tests
def workflow_rules() -> dict[str, str]:
    """Rule name -> its text, for every rule of the Snakefile and workflow/rules/*.smk."""
    rules = {}
    for path in [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]:
        for block in re.split(r"^(?=(?:rule|checkpoint)\s+\w+\s*:)", path.read_text(), flags=re.M)[1:]:
            rules[re.match(r"(?:rule|checkpoint)\s+(\w+)", block)[1]] = block
    return rules


def resources_of(rule_text: str) -> str:
    """The `resources:` block of a rule's text (snakefmt layout), or ''."""
    match = re.search(r"^    resources:\n((?: {8}.*\n)+)", rule_text, flags=re.M)
    return match[1] if match else ""


def load_profile(directory: Path) -> dict:
    import yaml

    return yaml.safe_load((directory / "config.yaml").read_text())


def test_slurm_profile_names_existing_rules_and_routes_gpu_rules_by_their_gpu_resource():
    import yaml

    profile = load_profile(SLURM_PROFILE)
    rules = workflow_rules()
    assert profile["executor"] == "slurm" and profile["retries"] >= 1
    unknown = sorted(set(profile["set-resources"]) - set(rules))
    assert not unknown, f"profiles/slurm set-resources for rules the workflow does not have: {unknown}"
    gpu_rules = {name for name, text in rules.items() if re.search(r"\bgpu\s*=", resources_of(text))}
    assert {"scan_shard", "sample_activations"} <= gpu_rules
    for name, resources in profile["set-resources"].items():
        assert "--gres" not in str(resources) and "--gpus" not in str(resources.get("slurm_extra", "")), name
        assert "gpu" not in resources and "gres" not in resources, f"{name}: GPUs come from the config, not the profile"
        if name in gpu_rules:  # the partition must follow the gpu resource (0 at a CPU-only site)
            assert "slurm_partition" not in resources, f"{name}: a GPU rule's partition is chosen by its gpu resource"
        else:
            assert "slurm_partition" in resources, f"{name}: CPU rules name their partition"
    partitions = yaml.safe_load((SLURM_PROFILE / profile["slurm-partition-config"]).read_text())["partitions"]
    assert any(limits.get("max_gpu", 0) > 0 for limits in partitions.values())
    assert any(limits.get("max_gpu", 0) == 0 for limits in partitions.values())


def test_profiles_parse_with_snakemakes_profile_parser():
    from snakemake.profiles import ProfileConfigFileParser

    for directory in (SLURM_PROFILE, WORKSTATION_PROFILE):
        with open(directory / "config.yaml") as stream:
            parsed = ProfileConfigFileParser().parse(stream)
        assert parsed, directory
    # profiles/default is the workflow profile Snakemake loads on every call: it may only pick the scheduler (a key
    # there replaces the same key of --profile as a whole, so resources or executor settings would override a site's)
    with open(REPO / "profiles" / "default" / "config.yaml") as stream:
        assert ProfileConfigFileParser().parse(stream) == {"scheduler": "greedy"}


def test_a_process_is_judged_by_its_own_clock(tmp_path):
    """A background run that finished in time passes however late its result is asked for (before: the limit
    counted from the fixture's start, and a probe that exited 0 after 1 min 46 s was 'killed after -8 s')."""
    quick = WatchedProcess([sys.executable, "-c", "print('done')"], tmp_path)
    time.sleep(2.0)
    run = quick.result(limit_s=1.0)
    assert (run.returncode, run.output) == (0, "done\n") and quick.elapsed_s < 2.0
    slow = WatchedProcess([sys.executable, "-c", "import time; time.sleep(60)"], tmp_path)
    with pytest.raises(pytest.fail.Exception, match="killed 1 s after its start"):
        slow.result(limit_s=1.0)
    assert slow.process.poll() is not None


def test_workstation_profile_queues_gpu_jobs_on_the_gpus_there_are(tmp_path):
    """profiles/workstation says one GPU: GPU jobs never overlap, while CPU jobs run beside them."""
    command = snakemake_command(GPU_QUEUE, tmp_path, "--profile", str(WORKSTATION_PROFILE), "--cores", "4")
    run = run_snakemake(command, tmp_path, 300)
    assert run.returncode == 0, run.output[-4000:]

    def interval(name: str) -> tuple[float, float]:
        start, end = (float(value) for value in (tmp_path / name).read_text().split())
        return start, end

    gpu = sorted(interval(f"g{i}.gpu") for i in (1, 2, 3))
    cpu = [interval(f"c{i}.cpu") for i in (1, 2)]
    assert all(first[1] <= second[0] for first, second in zip(gpu, gpu[1:])), f"GPU jobs overlapped: {gpu}"
    overlaps = [c for c in cpu if any(c[0] < g[1] and g[0] < c[1] for g in gpu)]
    assert overlaps, f"no CPU job ran beside a GPU job (is the profile limiting cores?): cpu {cpu}, gpu {gpu}"


@pytest.mark.slurm
def test_cluster_runs_jobs_and_gives_gpu_jobs_a_gpu(slurm_cluster, tmp_path):
    assert subprocess.run(["srun", "-p", "cpu", "true"], timeout=120).returncode == 0
    result = subprocess.run(
        ["sbatch", "--parsable", "--wait", "-p", "gpu", "--gpus=1", "-o", str(tmp_path / "gpu.out"),
         "--wrap", 'echo "CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES"'],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"CUDA_VISIBLE_DEVICES=\d", (tmp_path / "gpu.out").read_text().strip())


@pytest.mark.slurm
@pytest.mark.parametrize(
    ("resource", "slurm_says"),
    [
        ("cpu_rule:slurm_partition='nosuch'", "invalid partition specified: nosuch"),
        ("cpu_rule:mem_mb=100000000", "Memory specification can not be satisfied"),
    ],
    ids=["missing-partition", "too-much-memory"],
)
def test_slurm_refusal_reaches_the_user_with_rule_and_log(slurm_cluster, tmp_path, resource, slurm_says):
    command = snakemake_command(PROBE, tmp_path, "cpu_rule.txt", "--profile", str(SLURM_PROFILE),
                                *TEST_CLUSTER_ARGS, "--retries", "0", "--set-resources", resource)  # fmt: skip
    run = run_snakemake(command, tmp_path, 300)
    assert run.returncode != 0
    assert "Error in rule cpu_rule" in run.output, run.output[-4000:]
    assert slurm_says in run.output, run.output[-4000:]
    assert "logs/cpu_rule.log" in run.output, run.output[-4000:]
    assert not (tmp_path / "cpu_rule.txt").exists()


@pytest.mark.slurm
def test_pipeline_through_slurm_gives_the_local_bytes(local_pipeline_run, slurm_pipeline_run):
    run, workdir = slurm_pipeline_run
    local = file_digests(local_pipeline_run / "results" / "test")
    remote = file_digests(workdir / "results" / "test")
    assert len(local) > 20, f"local run made only {sorted(local)}"
    assert local.keys() == remote.keys(), f"files differ: {sorted(set(local) ^ set(remote))}"
    differing = [name for name in local if local[name] != remote[name]]
    assert not differing, f"outputs differ between the local and the SLURM run: {differing}"


@pytest.mark.slurm
def test_pipeline_gpu_rules_get_gpus_and_the_others_none(slurm_pipeline_run):
    """With resources.gpu = 1 every rule whose `gpu` is the config's gets --gpus=1 on the GPU partition (a rule
    whose gpu depends on more, like parse_shard with spaCy, asks for 0 here); every other job gets no GPU."""
    run, _ = slurm_pipeline_run
    assert run.run_id, run.output[-3000:]
    follows_config = re.compile(r"\bgpu=config\[\"resources\"\]\[\"gpu\"\],\s*$", flags=re.M)
    gpu_rules = {name for name, text in workflow_rules().items() if follows_config.search(resources_of(text))}
    assert {"scan_shard", "sample_activations"} <= gpu_rules
    jobs = slurm_jobs(run.run_id)
    assert {"scan_shard", "sample_activations", "corpus_part", "merge_topk"} <= {job.rule for job in jobs}
    assert all(job.state == "COMPLETED" for job in jobs), [(job.comment, job.state) for job in jobs]
    wrong = [(job.rule, job.partition, job.gpus) for job in jobs
             if (job.gpus, job.partition) != ((1, "gpu") if job.rule in gpu_rules else (0, "cpu"))]  # fmt: skip
    assert not wrong, f"jobs with the wrong GPU request or partition (rule, partition, GPUs): {wrong}"
    assert "fetch_source" not in {job.rule for job in jobs}, "fetch rules are local rules"


@pytest.mark.slurm
def test_probe_succeeds_after_retries(probe_run):
    run, workdir = probe_run
    assert run.returncode == 0, run.output[-6000:]
    assert (workdir / "flaky.txt").read_text() == "attempt 2\n"


@pytest.mark.slurm
def test_probe_gpu_requests_follow_the_gpu_resource(probe_run):
    run, workdir = probe_run
    device, partition = (workdir / "gpu_rule.txt").read_text().split()
    assert re.fullmatch(r"CUDA_VISIBLE_DEVICES=\d", device) and partition == "partition=gpu"
    assert (workdir / "gpu_idle.txt").read_text().split() == ["CUDA_VISIBLE_DEVICES=", "partition=cpu"]
    assert (workdir / "cpu_rule.txt").read_text().split() == ["CUDA_VISIBLE_DEVICES=", "partition=cpu"]
    gpus = {job.rule: job.gpus for job in slurm_jobs(run.run_id) if job.state == "COMPLETED"}
    assert gpus == {"flaky": 0, "gpu_rule": 1, "gpu_idle": 0, "cpu_rule": 0, "slow": 0}


@pytest.mark.slurm
def test_probe_job_killed_at_its_time_limit_leaves_nothing_and_reruns(probe_run):
    run, workdir = probe_run
    states = [(job.rule, job.state) for job in slurm_jobs(run.run_id)]
    assert ("slow", "TIMEOUT") in states and ("slow", "COMPLETED") in states, states
    assert ("flaky", "FAILED") in states, states
    assert re.search(r"Error in rule slow:\s+message: SLURM-job '\d+' failed, SLURM status is: 'TIMEOUT'", run.output)
    slurm_log = re.search(r"log: logs/slow\.log, (\S*\.snakemake/slurm_logs/rule_slow/\d+\.log)", run.output)
    assert slurm_log, run.output[-4000:]
    # SLURM sent SIGTERM (KillWait before SIGKILL): the job's Snakemake removed the partial output itself.
    assert "Removing output files of failed job slow" in Path(slurm_log[1]).read_text()
    # The output is appended to: a first attempt's leftover line would still be there.
    assert (workdir / "slow.txt").read_text() == "attempt 2 started\ndone\n"
