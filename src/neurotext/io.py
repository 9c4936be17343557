"""Atomic, deterministic file output shared by every stage.

Every writer goes through `atomic_output` (`atomic_directory` for a directory output such as a saved model): the data
is written to a temporary name in the target's directory and renamed into place only when complete, so a killed job
never leaves a half-written file. Writers are byte-deterministic: parquet files carry the config hash in their schema
metadata, npz archives use fixed timestamps.
"""

from __future__ import annotations

import contextlib
import io as _io
import json
import logging
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

log = logging.getLogger(__name__)

CONFIG_HASH_KEY = b"neurotext.config_hash"
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it to `path` on success, delete it on error."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs are shared (clusters, groups) like any new file
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a fresh temporary directory beside `path`; on success replace `path` with it in one rename, on error
    delete it. Stale temporary directories of earlier killed runs (`.{name}.*.tmp`) are removed first, so a run
    killed midway leaves no `path` (or the previous complete one) and the next run starts clean."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{target.name}.*.tmp"):
        log.warning("removing %s, left by an earlier run that was killed", stale)
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        _apply_umask(tmp)
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
            os.replace(target, old / target.name)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _apply_umask(directory: Path) -> None:
    """Give `directory` and everything in it the modes a plain mkdir / open would (mkdtemp and some writers use
    0700 / 0600), so a model directory is as readable as the workflow's other outputs."""
    umask = os.umask(0)
    os.umask(umask)
    for path in [directory, *directory.rglob("*")]:
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


def write_parquet(table: pa.Table, path: str | os.PathLike[str], config_hash: str = "") -> None:
    """Write `table` atomically as parquet (zstd), stamping `config_hash` into the schema metadata."""
    metadata = dict(table.schema.metadata or {})
    metadata[CONFIG_HASH_KEY] = config_hash.encode()
    table = table.replace_schema_metadata(metadata)
    with atomic_output(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", write_statistics=True)


def write_parquet_batches(
    tables: Iterable[pa.Table], schema: pa.Schema, path: str | os.PathLike[str], config_hash: str = ""
) -> None:
    """Write `tables` (each with `schema`'s columns) one after another into one parquet file (zstd), atomically,
    stamping `config_hash` like `write_parquet`; for outputs too big to build as one table (memory, 2 GB string
    offsets). The same tables give the same bytes."""
    metadata = dict(schema.metadata or {})
    metadata[CONFIG_HASH_KEY] = config_hash.encode()
    schema = schema.with_metadata(metadata)
    with atomic_output(path) as tmp, pq.ParquetWriter(tmp, schema, compression="zstd", write_statistics=True) as out:
        for table in tables:
            out.write_table(table.replace_schema_metadata(metadata))


def read_config_hash(path: str | os.PathLike[str]) -> str:
    """The config hash stamped into a parquet file by `write_parquet` ('' when absent)."""
    metadata = pq.read_schema(path).metadata or {}
    return metadata.get(CONFIG_HASH_KEY, b"").decode()


def save_npz(path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray]) -> None:
    """Write `arrays` as an uncompressed .npz with fixed timestamps and sorted names (same arrays, same bytes)."""
    with atomic_output(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
        for name in sorted(arrays):
            buffer = _io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            archive.writestr(info, buffer.getvalue())


def save_npy(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write one array atomically as .npy."""
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as handle:
            np.lib.format.write_array(handle, np.ascontiguousarray(array), allow_pickle=False)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 text atomically."""
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write JSON atomically, keys sorted, two-space indent."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
