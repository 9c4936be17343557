"""Conda envs (envs/*.yaml): what can be checked without conda.

Conda cannot run here (no channel access, no binary), so these tests check the env files statically:
- each file parses, lists `nodefaults` among its channels (never `defaults`) and pins every dependency
  (`name=version` for conda, `name==version` under `pip:`), third-party packages only (jobs get `src/` on PYTHONPATH);
- the pins agree with the pins of the virtualenv the tests run in (requirements.lock, requirements-nodeps.txt and
  the Makefile's torch), so what the tests prove holds for the cluster's envs;
- every rule of the Snakefile and `workflow/rules/*.smk` that runs something has `conda:` naming an existing env;
- every third-party module that a rule's script reaches by import (read statically with `ast`, following the
  `neurotext` package's own imports) is provided by that rule's env;
- and, since a static walk misses what third-party code imports on a job's behalf (pyarrow's `.to_pandas()`
  imports pandas), every module each job of the shared end-to-end run really imported (traced by
  tests/import_trace/sitecustomize.py) is provided by its rule's env: pinned, or required by a pinned package.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
ENV_DIR = REPO / "envs"
SRC = REPO / "src"
PACKAGE = "neurotext"
RULE_FILES = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]

# Directives that make a rule run something (a rule with none of them, such as `all`, only collects targets).
ACTION_DIRECTIVES = ("script", "shell", "run", "notebook", "wrapper", "cwl", "template_engine")
# Conda package names that differ from the PyPI distribution's name, by module.
CONDA_ALIASES = {"torch": {"pytorch", "pytorch-gpu", "pytorch-cpu"}, "matplotlib": {"matplotlib-base"}}
# Modules a job has without its env providing them: Snakemake puts its own package on the script's path.
PROVIDED_BY_SNAKEMAKE = {"snakemake"}
PINNED_CONDA = re.compile(
    r"^(?P<name>[A-Za-z0-9_.\-]+)=(?P<version>[0-9][A-Za-z0-9_.+!\-]*)(=(?P<build>[A-Za-z0-9_.*+\-]+))?$"
)
PINNED_PIP = re.compile(r"^(?P<name>[A-Za-z0-9_.\-]+)(\[[A-Za-z0-9_,\-]+\])?==(?P<version>[0-9][A-Za-z0-9_.+!\-]*)$")


def normalize(name: str) -> str:
    """Package name in canonical form: lower case, runs of `_`, `.` and `-` as one `-` (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


# ---------------------------------------------------------------------------------------------------------- env files
@dataclass
class CondaEnv:
    """One env file: its channels, pinned conda and pip dependencies (normalized name -> version), and problems."""

    path: Path
    channels: list[str] = field(default_factory=list)
    conda: dict[str, str] = field(default_factory=dict)
    builds: dict[str, str] = field(default_factory=dict)  # conda build strings where given (pytorch=2.13.0=cuda*)
    pip: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def provides(self, names: Iterable[str]) -> bool:
        return any(normalize(name) in self.conda or normalize(name) in self.pip for name in names)


def load_env(path: Path) -> CondaEnv:
    """Parse an env file; every deviation from `name=version` / pip `name==version` is listed in `problems`."""
    env = CondaEnv(path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        env.problems.append(f"not valid YAML: {error}")
        return env
    if not isinstance(data, dict) or not isinstance(data.get("dependencies"), list):
        env.problems.append("needs a mapping with a `dependencies:` list")
        return env
    env.channels = [str(channel) for channel in data.get("channels") or []]
    for item in data["dependencies"]:
        if isinstance(item, dict) and set(item) == {"pip"}:
            for requirement in item["pip"] or []:
                match = PINNED_PIP.match(str(requirement).strip())
                if not match:
                    env.problems.append(f"pip dependency {requirement!r} is not pinned as name==version")
                else:
                    env.pip[normalize(match["name"])] = match["version"]
        elif isinstance(item, str) and (match := PINNED_CONDA.match(item.strip())):
            env.conda[normalize(match["name"])] = match["version"]
            if match["build"]:
                env.builds[normalize(match["name"])] = match["build"]
        else:
            env.problems.append(f"dependency {item!r} is not pinned as name=version")
    return env


def env_files() -> list[Path]:
    return sorted(ENV_DIR.glob("*.yaml"))


def locked_versions() -> dict[str, str]:
    """Normalized name -> version of every package pinned for the virtualenv the tests run in."""
    versions = {}
    for name in ("requirements.lock", "requirements-nodeps.txt", "requirements.txt"):
        for line in (REPO / name).read_text().splitlines():
            if match := PINNED_PIP.match(line.split("#")[0].strip()):
                versions.setdefault(normalize(match["name"]), match["version"])
    if match := re.search(r"pip install[^\n]*\btorch==([0-9][\w.+]*)", (REPO / "Makefile").read_text()):
        versions["torch"] = match[1]
    return versions


def lock_name(conda_name: str) -> str:
    """The PyPI name a conda package is locked under in the virtualenv (pytorch, pytorch-gpu -> torch)."""
    for module, aliases in CONDA_ALIASES.items():
        if conda_name in aliases:
            return module
    return conda_name


# -------------------------------------------------------------------------------------------------------------- rules
@dataclass(frozen=True)
class Rule:
    """A rule as written in a rule file: its name, where it is, and the raw text of each of its directives."""

    name: str
    file: Path
    line: int
    directives: dict[str, str]

    @property
    def where(self) -> str:
        return f"rule {self.name} ({self.file.relative_to(REPO)}:{self.line})"

    def path_of(self, directive: str) -> Path | None:
        """The file a directive names (first string literal), relative to the rule file as Snakemake resolves it."""
        match = re.search(r"""["']([^"']+)["']""", self.directives.get(directive, ""))
        return (self.file.parent / match[1]).resolve() if match else None


RULE_START = re.compile(r"^(rule|checkpoint)\s+(\w+)\s*:")
DIRECTIVE = re.compile(r"^ {4}(\w+)\s*:(.*)$")


def parse_rules(path: Path) -> list[Rule]:
    """Rules of one Snakefile or rule file (snakefmt layout: `rule name:` at column 0, directives at 4 spaces)."""
    rules: list[Rule] = []
    current: tuple[str, int, dict[str, list[str]]] | None = None
    directive = None

    def close() -> None:
        if current:
            name, line, blocks = current
            rules.append(Rule(name, path, line, {key: "\n".join(text) for key, text in blocks.items()}))

    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if start := RULE_START.match(line):
            close()
            current, directive = (start[2], number, {}), None
        elif current and line and not line[0].isspace() and not line.startswith("#"):
            close()
            current = directive = None
        elif current and (match := DIRECTIVE.match(line)):
            directive = match[1]
            current[2][directive] = [match[2]]
        elif current and directive and line.startswith(" " * 8):
            current[2][directive].append(line)
    close()
    return rules


def all_rules() -> list[Rule]:
    return [rule for path in RULE_FILES for rule in parse_rules(path)]


def acting_rules() -> list[Rule]:
    return [rule for rule in all_rules() if any(key in rule.directives for key in ACTION_DIRECTIVES)]


# ------------------------------------------------------------------------------------------------------------ imports
def is_optional_import(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """An import inside `try: ... except ImportError` (an optional dependency) or `if TYPE_CHECKING:`."""
    child, parent = node, parents.get(node)
    while parent is not None:
        if isinstance(parent, ast.Try) and child in parent.body:
            for handler in parent.handlers:
                names = ast.unparse(handler.type) if handler.type else ""
                if "ImportError" in names or "ModuleNotFoundError" in names:
                    return True
        if isinstance(parent, ast.If) and "TYPE_CHECKING" in ast.unparse(parent.test) and child in parent.body:
            return True
        child, parent = parent, parents.get(parent)
    return False


@functools.cache
def imported_modules(path: Path, module: str | None = None) -> frozenset[str]:
    """Absolute names of the modules `path` imports anywhere (top level or inside functions), optional ones left out.

    `module` is the file's own dotted name, to resolve relative imports (`from .base import x`).
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    package = module if path.name == "__init__.py" else (module.rpartition(".")[0] if module else "")
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and not is_optional_import(node, parents):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not is_optional_import(node, parents):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1] if package else []
                base = ".".join([*anchor, base] if base else anchor)
            if base == "__future__":
                continue
            found.add(base)
            # `from pkg import sub` imports the submodule pkg.sub when there is one; resolution decides below.
            found.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return frozenset(found)


def module_file(module: str, src: Path = SRC) -> Path | None:
    """The source file of a module of the project's package, or None when there is none (not a module)."""
    base = src.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def loads_submodules_dynamically(init_file: Path) -> bool:
    """A package whose __init__ imports its submodules by name at run time (pkgutil.iter_modules + import_module)."""
    text = init_file.read_text()
    return "iter_modules" in text and "import_module" in text


def third_party_modules(script: Path, src: Path = SRC, package: str = PACKAGE) -> dict[str, str]:
    """Top-level third-party modules reachable from `script`: module -> the file (relative to src) that imports it.

    Follows imports of `package` through its modules (each parent package's __init__ too); a package that loads
    its submodules dynamically counts as importing all of them.
    """
    needed: dict[str, str] = {}
    seen: set[Path] = set()
    queue: list[tuple[Path, str | None]] = [(script, None)]
    while queue:
        path, module = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        where = str(path.relative_to(src)) if path.is_relative_to(src) else path.name
        for name in sorted(imported_modules(path, module)):
            top = name.split(".")[0]
            if top == package:
                parts = name.split(".")
                for depth in range(1, len(parts) + 1):
                    prefix = ".".join(parts[:depth])
                    if (file := module_file(prefix, src)) is not None:
                        queue.append((file, prefix))
                        if file.name == "__init__.py" and loads_submodules_dynamically(file):
                            for sub in sorted(file.parent.glob("*.py")):
                                if sub.name != "__init__.py":
                                    queue.append((sub, f"{prefix}.{sub.stem}"))
            elif top and top not in sys.stdlib_module_names and top not in PROVIDED_BY_SNAKEMAKE:
                needed.setdefault(top, where)
    return needed


@functools.cache
def installed_distributions() -> dict[str, list[str]]:
    """Top-level module -> names of the installed distributions that provide it."""
    return importlib.metadata.packages_distributions()


def package_names(module: str) -> set[str]:
    """Conda/PyPI package names that provide a top-level module, from the installed distributions' metadata."""
    distributions = installed_distributions().get(module, [])
    return {normalize(name) for name in distributions} | CONDA_ALIASES.get(module, set()) | {normalize(module)}


# -------------------------------------------------------------------------------------------------------------- tests
def test_env_files_exist():
    names = {path.stem for path in env_files()}
    assert {"fetch", "corpus", "scan"} <= names, f"envs/ holds {sorted(names)}"


@pytest.mark.parametrize("path", env_files(), ids=lambda p: p.name)
def test_env_parses_and_pins_every_dependency(path):
    env = load_env(path)
    assert not env.problems, f"{path.relative_to(REPO)}: " + "; ".join(env.problems)
    assert "nodefaults" in env.channels, f"{path.relative_to(REPO)}: add `nodefaults` to channels"
    assert "defaults" not in env.channels, f"{path.relative_to(REPO)}: drop the `defaults` channel"
    python_hint = "pin python to a patch release (python=3.11.7; conda reads python=3.11 as 3.11.*)"
    assert re.fullmatch(r"\d+\.\d+\.\d+", env.conda.get("python", "")), f"{path.relative_to(REPO)}: {python_hint}"
    if env.pip:
        assert "pip" in env.conda, f"{path.relative_to(REPO)}: a `pip:` section needs pip pinned among the conda deps"
    own = {PACKAGE, "snakemake"} & (set(env.conda) | set(env.pip))
    assert not own, f"{path.relative_to(REPO)}: third-party packages only (jobs get src/ on PYTHONPATH): {own}"


@pytest.mark.parametrize("path", env_files(), ids=lambda p: p.name)
def test_env_pins_match_the_tested_virtualenv(path):
    env = load_env(path)
    locked = locked_versions()
    differing = {
        name: (version, locked[lock_name(name)])
        for name, version in {**env.conda, **env.pip}.items()
        if lock_name(name) in locked and locked[lock_name(name)] != version
    }
    where = path.relative_to(REPO)
    assert not differing, f"{where}: pins differ from the virtualenv the tests run in (env, locked): {differing}"


def test_every_acting_rule_has_a_conda_env():
    rules = acting_rules()
    assert len(rules) >= 10, f"found only {[rule.name for rule in rules]}: is the rule parser reading the files?"
    problems = []
    for rule in rules:
        env = rule.path_of("conda")
        if env is None:
            problems.append(f"{rule.where}: no `conda:` directive naming an env file")
        elif not env.is_file():
            problems.append(f"{rule.where}: conda env {env} does not exist")
        elif env.parent != ENV_DIR:
            problems.append(f"{rule.where}: conda env {env} is not under envs/")
    assert not problems, "\n".join(problems)


def test_every_env_file_is_used_by_a_rule():
    used = {rule.path_of("conda") for rule in acting_rules()}
    unused = [path.name for path in env_files() if path.resolve() not in used]
    assert not unused, f"env files no rule uses: {unused}"


def rules_with_python_scripts() -> list[Rule]:
    return [rule for rule in acting_rules() if (script := rule.path_of("script")) and script.suffix == ".py"]


@pytest.mark.parametrize("rule", rules_with_python_scripts(), ids=lambda rule: rule.name)
def test_rule_env_provides_every_third_party_import(rule):
    script, env_path = rule.path_of("script"), rule.path_of("conda")
    assert script.is_file(), f"{rule.where}: script {script} does not exist"
    assert env_path is not None and env_path.is_file(), f"{rule.where}: no conda env"
    env = load_env(env_path)
    installed = env_distributions(env)  # the pins and what they require (conda installs both)
    missing = {
        module: via
        for module, via in third_party_modules(script).items()
        if not env.provides(package_names(module)) and not package_names(module) & installed
    }
    assert not missing, (
        f"{rule.where}: {env_path.relative_to(REPO)} lacks packages for modules its code imports "
        f"(module: imported by): {missing}; add them, pinned, to the env"
    )


def has_cuda_torch(env: CondaEnv) -> bool:
    """torch built for CUDA: conda-forge's pytorch-gpu, pytorch with a cuda build string, or PyPI's torch wheel (the
    Linux x86_64 wheel on PyPI is the CUDA build; it runs on CPU too)."""
    return "pytorch-gpu" in env.conda or env.builds.get("pytorch", "").startswith("cuda") or "torch" in env.pip


def gpu_rules() -> list[Rule]:
    return [rule for rule in acting_rules() if re.search(r"\bgpu\s*=", rule.directives.get("resources", ""))]


def test_gpu_rules_get_a_cuda_build_of_torch():
    rules = gpu_rules()
    assert {"scan_shard", "sample_activations"} <= {rule.name for rule in rules}
    problems = []
    for rule in rules:
        env = load_env(rule.path_of("conda"))
        if env.provides(CONDA_ALIASES["torch"] | {"torch"}) and not has_cuda_torch(env):
            problems.append(f"{rule.where}: {env.path.name} has a torch that may be the CPU build (use pytorch-gpu)")
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------------------------ the checker itself, on fixtures
def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_import_walker_follows_the_package_and_skips_optional_imports(tmp_path):
    src = tmp_path / "src"
    write(src / "pkg" / "__init__.py", "")
    write(src / "pkg" / "stage.py", "import json\nfrom .helpers import f\n\ndef g():\n    import lazy_lib\n")
    write(src / "pkg" / "helpers.py", "import numpy as np\ntry:\n    import fast_lib\nexcept ImportError:\n    pass\n")
    write(src / "pkg" / "unused.py", "import never_reached\n")
    write(src / "pkg" / "plugins" / "__init__.py",
          "import importlib, pkgutil\nfor m in pkgutil.iter_modules(__path__):\n"
          "    importlib.import_module(f'{__name__}.{m.name}')\n")  # fmt: skip
    write(src / "pkg" / "plugins" / "one.py", "import plugin_dep\n")
    script = write(tmp_path / "script.py", "from pkg.stage import g\nfrom pkg import plugins\nimport yaml\n")
    found = third_party_modules(script, src=src, package="pkg")
    assert set(found) == {"numpy", "lazy_lib", "plugin_dep", "yaml"}
    assert found["numpy"] == "pkg/helpers.py"


def test_env_parser_rejects_unpinned_dependencies(tmp_path):
    path = write(tmp_path / "e.yaml", "channels: [conda-forge, nodefaults]\ndependencies:\n  - python=3.11.7\n"
                 "  - numpy\n  - pandas>=2\n  - pytorch=2.13.0=cuda*\n  - pip=25.3\n  - pip:\n"
                 "      - good==1.0\n      - bad>=1\n")  # fmt: skip
    env = load_env(path)
    assert env.conda == {"python": "3.11.7", "pytorch": "2.13.0", "pip": "25.3"}
    assert env.builds == {"pytorch": "cuda*"} and has_cuda_torch(env)
    assert env.pip == {"good": "1.0"}
    assert len(env.problems) == 3
    assert env.provides(package_names("torch")) and not env.provides(package_names("pandas"))


def test_rule_parser_reads_directives(tmp_path):
    text = ('rule a:\n    output:\n        "x",\n    conda:\n        "../envs/a.yaml"\n    script:\n'
            '        "../scripts/a.py"\n\n\nrule all:\n    input:\n        "x",\n')  # fmt: skip
    path = write(tmp_path / "rules" / "x.smk", text)
    rules = parse_rules(path)
    assert [rule.name for rule in rules] == ["a", "all"]
    assert rules[0].path_of("conda") == (tmp_path / "envs" / "a.yaml").resolve()
    assert "script" not in rules[1].directives


# ------------------------------------------------------------------------- what the jobs really import, at run time
# The static walk above cannot see imports made by third-party code on the job's behalf (pyarrow's `.to_pandas()`
# imports pandas; transformers and matplotlib load modules lazily). So the shared end-to-end run (`e2e_run`,
# tests/conftest.py) runs every job with tests/import_trace/ on PYTHONPATH: its sitecustomize writes, per job,
# every top-level module the job had imported when it exited. Each module must be provided by the rule's env: by a
# pinned package or by a package a pinned one requires (conda installs those too; read from the metadata of the
# virtualenv the tests run in, whose pins the envs match), or by Snakemake's own script preamble.
IMPORT_TRACE = REPO / "tests" / "import_trace"
IMPORT_TRACE_DIR = "imports"  # beside the shared run's working directory


def import_trace_env(trace_dir: Path) -> dict[str, str]:
    """Environment variables that make every job of a workflow run write its import trace into `trace_dir`."""
    path = [str(IMPORT_TRACE), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {"NEUROTEXT_IMPORT_TRACE": str(trace_dir), "PYTHONPATH": os.pathsep.join(path)}


@functools.cache
def distribution_requirements(name: str) -> frozenset[str]:
    """Normalized names of what an installed distribution requires (extras and non-matching markers left out)."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        requires = importlib.metadata.distribution(name).requires or []
    except importlib.metadata.PackageNotFoundError:
        return frozenset()
    names = set()
    for text in requires:
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            continue
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            names.add(normalize(requirement.name))
    return frozenset(names)


def env_distributions(env: CondaEnv) -> set[str]:
    """Normalized PyPI names of everything `env` installs: its pins (conda aliases mapped: pytorch-gpu -> torch)
    and, recursively, what they require."""
    todo = [lock_name(name) for name in [*env.conda, *env.pip]]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(distribution_requirements(name) - seen)
    return seen


@functools.cache
def snakemake_preamble_modules() -> frozenset[str]:
    """Top-level modules a job has from Snakemake's script preamble (its own path, not the env's)."""
    code = ("import json, sys; before = set(sys.modules); from snakemake import script; "
            "print(json.dumps(sorted({m.split('.')[0] for m in set(sys.modules) - before})))")  # fmt: skip
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return frozenset(json.loads(output)) | {"snakemake", "__mp_main__", "sitecustomize"}


# Modules a job has without any package of its env: Python's own start-up (setuptools' .pth hook, sysconfig data).
PYTHON_STARTUP_MODULES = {"_distutils_hack"}
# Modules third-party code imports only when they happen to be installed (inside `try: ... except ImportError`, or
# after probing for them), so a job in the virtualenv, which has them, imports them and a job in an env without
# them still works: module -> (the third-party packages whose import of it is optional, where). Only a first
# import by one of those packages is excused; a module one of them brings in is excused with it (scikit-learn's
# narwhals when nltk imports scikit-learn). pyarrow's optional pandas is deliberately NOT excused: it would hide
# the `.to_pandas()` calls that need pandas, so every env whose jobs use pyarrow's datasets provides pandas.
OPTIONAL_RUNTIME_IMPORTS: dict[str, tuple[frozenset[str], str]] = {
    "cloudpickle": (frozenset({"pyarrow"}), "pyarrow's serialization, when installed"),
    "PIL": (frozenset({"transformers"}), "transformers.utils.import_utils probes the vision backend"),
    "scipy": (frozenset({"transformers", "nltk"}), "transformers' backend probe; nltk.metrics.association"),
    "sklearn": (frozenset({"nltk"}), "nltk.classify.scikitlearn wraps it when installed"),
    "colorama": (frozenset({"torch", "numba"}), "coloured messages of torch._inductor and numba.core.errors"),
    "tabulate": (frozenset({"torch"}), "torch._dynamo.trace_rules' optional table printing"),
    "charset_normalizer": (frozenset({"numpy"}), "numpy.f2py.crackfortran's optional encoding detection"),
    "rich": (frozenset({"sklearn"}), "sklearn.callback's optional progress bars"),
    "psutil": (frozenset({"joblib"}), "joblib's loky backend, when installed"),
    "yaml": (frozenset({"numba"}), "numba.core.config reads .numba_config.yaml only with pyyaml"),
}


def module_distributions(module: str, file: str | None) -> set[str]:
    """Normalized names of the distributions that hold a top-level module: from the installed metadata, else from
    the package directory its file lies in (Cython registers shared modules such as pandas' `_cyutility` under a
    top-level name)."""
    names = set(installed_distributions().get(module, []))
    if not names and file:
        parts = Path(file).parts
        if "site-packages" in parts and parts.index("site-packages") + 1 < len(parts):
            owner = Path(parts[parts.index("site-packages") + 1]).stem.split(".")[0]
            names = set(installed_distributions().get(owner, []))
    return {normalize(name) for name in names}


def unprovided_imports(trace: dict, env: CondaEnv, own: Iterable[Path] = (SRC, REPO / "workflow")) -> dict[str, str]:
    """The third-party modules of one job trace that `env` does not provide: module -> the module that first
    imported it. Modules with no file (built in), the standard library's, Snakemake's preamble's, the project's own
    (under a directory of `own`) and `OPTIONAL_RUNTIME_IMPORTS` are not counted."""
    provided = env_distributions(env)
    skipped = snakemake_preamble_modules() | PYTHON_STARTUP_MODULES | {"__main__"}
    missing = {}
    for module, file in sorted(trace["modules"].items()):
        if module in sys.stdlib_module_names or module in skipped or module.startswith("_sysconfigdata"):
            continue
        if file is None or any(Path(file).resolve().is_relative_to(directory) for directory in own):
            continue
        if not module_distributions(module, file) & provided:
            missing[module] = trace["importers"].get(module, "?")
    return drop_optional(missing, trace)


def drop_optional(missing: dict[str, str], trace: dict) -> dict[str, str]:
    """`missing` without the modules `OPTIONAL_RUNTIME_IMPORTS` excuses, and without what an excused module brought
    in (its first importer, or the distribution its file belongs to, is an excused one's)."""
    excused = {module for module, importer in missing.items() if module in OPTIONAL_RUNTIME_IMPORTS
               and importer.split(".")[0] in OPTIONAL_RUNTIME_IMPORTS[module][0]}  # fmt: skip
    changed = True
    while changed:
        owners = {name for module in excused for name in module_distributions(module, trace["modules"].get(module))}
        more = {module for module, importer in missing.items() if module not in excused
                and (importer.split(".")[0] in excused
                     or module_distributions(module, trace["modules"].get(module)) <= owners != set())}  # fmt: skip
        changed = bool(more)
        excused |= more
    return {module: importer for module, importer in missing.items() if module not in excused}


def read_import_traces(trace_dir: Path) -> list[dict]:
    """The job traces the import tracer wrote into `trace_dir`, by file name."""
    return [json.loads(path.read_text()) for path in sorted(trace_dir.glob("*.json"))]


@pytest.mark.e2e
def test_every_job_of_the_test_run_imports_only_what_its_env_provides(e2e_run):
    traces = read_import_traces(e2e_run.parent / IMPORT_TRACE_DIR)
    rules = {rule.name: rule for rule in acting_rules()}
    traced = {trace["rule"] for trace in traces}
    assert len(traced) >= 20, f"only {sorted(traced)} wrote import traces: is tests/import_trace on PYTHONPATH?"
    assert {"table3", "scan_shard", "build_browser", "records_layers", "parse_shard"} <= traced, sorted(traced)
    problems = []
    for trace in traces:
        rule = rules[trace["rule"]]
        env = load_env(rule.path_of("conda"))
        missing = unprovided_imports(trace, env)
        if missing:
            problems.append(f"{rule.where}: {env.path.relative_to(REPO)} lacks packages for modules the job "
                            f"imported at run time (module: first imported by): {missing}")  # fmt: skip
    assert not problems, "\n".join(sorted(set(problems))) + "\nadd them, pinned, to the env"


def test_import_trace_catches_a_module_imported_by_third_party_code(tmp_path):
    """The tracer records pandas for a job that only calls pyarrow's `.to_pandas()`, and the check then fails an
    env without pandas and passes one with it."""
    script = write(tmp_path / "job.py", "import types\nsnakemake = types.SimpleNamespace(rule='job')\n"
                   "import pyarrow as pa\npa.table({'a': [1]}).to_pandas()\n")  # fmt: skip
    env_vars = import_trace_env(tmp_path / "trace")
    subprocess.run([sys.executable, str(script)], check=True, env={**os.environ, **env_vars}, timeout=120)
    (trace,) = read_import_traces(tmp_path / "trace")
    assert trace["rule"] == "job" and "pandas" in trace["modules"]
    without = load_env(write(tmp_path / "a.yaml", "channels: [conda-forge, nodefaults]\ndependencies:\n"
                             "  - python=3.11.7\n  - pyarrow=26.0.1\n"))  # fmt: skip
    with_pandas = load_env(write(tmp_path / "b.yaml", "channels: [conda-forge, nodefaults]\ndependencies:\n"
                                 "  - python=3.11.7\n  - pyarrow=26.0.1\n  - pandas=3.1.1\n"))  # fmt: skip
    assert set(unprovided_imports(trace, without)) >= {"pandas"}
    assert unprovided_imports(trace, with_pandas) == {}
