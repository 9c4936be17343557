"""Helpers shared by the loaders of this package: opening files inside archives, turning read errors into
`SourceError`, and building metadata. Registers no format.

A source may be given as the distribution file itself (a zip or wheel, a tar archive, a compressed file) or as
what it unpacks to (a directory or the extracted file); `open_member` finds a member by its path suffix in any of
them, so the fetch stage and the loaders meet only through a file path.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import os
import re
import tarfile
import xml.etree.ElementTree as ET
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.parquet as pq

from neurotext.artifacts.corpus import METADATA_FIELDS
from neurotext.loaders.base import SourceError

#: Read errors of archives and compressed streams: the file is truncated or corrupt.
READ_ERRORS: tuple[type[BaseException], ...] = (
    EOFError,
    OSError,
    tarfile.TarError,
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
)

REFETCH_HINT = "the file is truncated or corrupt: delete it and fetch it again (and check its sha256)"


@contextlib.contextmanager
def read_errors_as_source_error(where: str) -> Iterator[None]:
    """Turn archive, compression and XML errors raised while reading `where` into a `SourceError`."""
    try:
        yield
    except SourceError:
        raise
    except FileNotFoundError as error:
        raise SourceError(f"{where}: file not found ({error.filename}); fetch it or fix the dataset's path") from error
    except ET.ParseError as error:
        raise SourceError(f"{where}: not well-formed XML ({error}); {REFETCH_HINT}") from error
    except READ_ERRORS as error:
        raise SourceError(f"{where}: cannot read ({type(error).__name__}: {error}); {REFETCH_HINT}") from error


def file_magic(path: str | os.PathLike[str]) -> bytes:
    """The first 6 bytes of a file ('' for a directory); raises SourceError when it is missing."""
    if os.path.isdir(path):
        return b""
    try:
        with open(path, "rb") as handle:
            return handle.read(6)
    except FileNotFoundError:
        raise SourceError(
            f"{path}: file not found; fetch it (snakemake fetches sources) or fix the dataset's path"
        ) from None
    except OSError as error:
        raise SourceError(f"{path}: cannot open ({error})") from error


def archive_kind(path: str | os.PathLike[str]) -> str:
    """'dir', 'zip' (zip and wheel), 'tar' (plain or gz/bz2/xz compressed) or 'file' (anything else)."""
    if os.path.isdir(path):
        return "dir"
    magic = file_magic(path)
    if magic.startswith(b"PK\x03\x04") or magic.startswith(b"PK\x05\x06"):
        return "zip"
    if _is_tar(path, magic):
        return "tar"
    return "file"


def _is_tar(path: str | os.PathLike[str], magic: bytes) -> bool:
    """True when `path` is a tar archive, compressed or not (checks the first header only)."""
    opener = {b"\x1f\x8b": gzip.open, b"BZ": bz2.open, b"\xfd7": lzma.open}.get(magic[:2])
    try:
        if opener is None:
            with open(path, "rb") as handle:
                block = handle.read(512)
        else:
            with opener(path, "rb") as handle:  # type: ignore[operator]
                block = handle.read(512)
    except READ_ERRORS:
        return False
    return len(block) == 512 and block[257:262] == b"ustar" or _is_v7_tar(block)


def _is_v7_tar(block: bytes) -> bool:
    """An old-style tar header: a valid checksum field (no 'ustar' magic)."""
    if len(block) < 512 or not block[0]:
        return False
    try:
        stored = int(block[148:156].replace(b"\x00", b" ").strip() or b"-1", 8)
    except ValueError:
        return False
    computed = sum(block[:148]) + 8 * 32 + sum(block[156:512])
    return stored == computed


def member_matches(name: str, wanted: str) -> bool:
    """A member name matches `wanted` when it equals it or ends with '/' + wanted."""
    name = name.removeprefix("./")
    return name == wanted or name.endswith("/" + wanted)


def decompressed(stream: IO[bytes], magic: bytes) -> IO[bytes]:
    """Wrap `stream` in the decompressor its first bytes call for (bz2, gzip, xz), or return it as is."""
    if magic.startswith(b"BZh"):
        return bz2.BZ2File(stream)  # type: ignore[return-value]
    if magic.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=stream)  # type: ignore[return-value]
    if magic.startswith(b"\xfd7zXZ"):
        return lzma.LZMAFile(stream)  # type: ignore[return-value]
    return stream


class _PrefixedRaw(io.RawIOBase):
    """A raw stream that first returns `head` (bytes already read to sniff the format), then the rest of `stream`."""

    def __init__(self, head: bytes, stream: IO[bytes]) -> None:
        super().__init__()
        self._head = head
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def sniffed(stream: IO[bytes]) -> IO[bytes]:
    """`stream`, decompressed when its first bytes say bz2, gzip or xz; works on non-seekable streams."""
    head = stream.read(6)
    buffered = io.BufferedReader(_PrefixedRaw(head, stream), buffer_size=1 << 20)
    return decompressed(buffered, head)  # type: ignore[arg-type]


@contextlib.contextmanager
def open_member(path: str | os.PathLike[str], member: str | None) -> Iterator[tuple[IO[bytes], str]]:
    """Open `member` of the source at `path` for binary reading, decompressing it when compressed.

    `path` may be a zip or wheel, a tar archive, a directory, or the file itself (then `member` is ignored: the
    extracted file stands for the member). Yields (stream, where) where `where` names file and member for messages.
    Raises SourceError when the member is missing or ambiguous, listing what the archive holds.
    """
    path = os.fspath(path)
    kind = archive_kind(path)
    if member is None or kind == "file":
        if kind == "dir":
            raise SourceError(f"{path}: is a directory; set the dataset's path to the file (or name a `member`)")
        where = path
        with read_errors_as_source_error(where), open(path, "rb") as raw:
            yield sniffed(raw), where
        return
    if kind == "dir":
        found = find_in_directory(path, member)
        where = f"{path}/{os.path.relpath(found, path)}"
        with read_errors_as_source_error(where), open(found, "rb") as raw:
            yield sniffed(raw), where
        return
    if kind == "zip":
        with read_errors_as_source_error(path), zipfile.ZipFile(path) as archive:
            names = [name for name in archive.namelist() if not name.endswith("/")]
            name = _pick_member(path, names, member)
            where = f"{path}:{name}"
            with read_errors_as_source_error(where), archive.open(name) as raw:
                yield sniffed(raw), where
        return
    with read_errors_as_source_error(path), tarfile.open(path, mode="r|*") as archive:
        seen: list[str] = []
        for info in archive:
            if info.isfile() and member_matches(info.name, member):
                where = f"{path}:{info.name}"
                raw = archive.extractfile(info)
                assert raw is not None
                with read_errors_as_source_error(where):
                    yield sniffed(raw), where
                return
            if info.isfile():
                seen.append(info.name)
        raise SourceError(_missing_member_message(path, member, seen))


def _pick_member(path: str, names: list[str], member: str) -> str:
    """The one name in `names` matching `member`; SourceError when none or several do."""
    matches = [name for name in names if member_matches(name, member)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise SourceError(_missing_member_message(path, member, names))
    raise SourceError(f"{path}: member {member!r} is ambiguous ({', '.join(matches[:5])}); give a longer path")


def _missing_member_message(path: str, member: str, names: list[str]) -> str:
    base = os.path.basename(member)
    similar = [name for name in names if os.path.basename(name) == base] or names[:8]
    listing = ", ".join(similar[:8]) + (" ..." if len(similar) > 8 else "")
    return (
        f"{path}: no member {member!r} in the archive (holds {len(names)} files, e.g. {listing}); fix the dataset's "
        "`member`, or fetch the right file (it may be truncated)"
    )


def find_in_directory(root: str, member: str) -> str:
    """The file under `root` whose relative path is `member` or ends with '/' + member."""
    direct = os.path.join(root, member)
    if os.path.isfile(direct):
        return direct
    matches = sorted(
        str(found) for found in Path(root).rglob(os.path.basename(member)) if member_matches(found.as_posix(), member)
    )
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise SourceError(f"{root}: no file {member!r} in this directory; fix the dataset's `member` or path")
    raise SourceError(f"{root}: {member!r} is ambiguous ({', '.join(matches[:5])}); give a longer path")


def iter_tar_files(path: str, wanted: Callable[[str], bool]) -> Iterator[tuple[str, bytes]]:
    """(member name, content) of the regular files of a tar archive whose name is `wanted`, in archive order.

    The archive is streamed (one member in memory at a time); read errors -> SourceError naming the member.
    """
    with read_errors_as_source_error(path), tarfile.open(path, mode="r|*") as archive:
        for info in archive:
            if not info.isfile() or not wanted(info.name):
                continue
            handle = archive.extractfile(info)
            if handle is None:
                continue
            with read_errors_as_source_error(f"{path}:{info.name}"):
                data = handle.read()
            yield info.name, data


def iter_directory_files(root: str, suffix: str = "") -> list[str]:
    """Relative POSIX paths of the files under `root` ending with `suffix`, sorted (the source order of a directory)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for filename in filenames:
            if filename.endswith(suffix) and not filename.startswith("."):
                found.append(Path(dirpath, filename).relative_to(root).as_posix())
    return sorted(found)


def open_parquet(path: str) -> pq.ParquetFile:
    """A pyarrow ParquetFile (without read-ahead); SourceError naming the file when it is missing or not parquet."""
    if not os.path.isfile(path):
        raise SourceError(f"{path}: file not found; fix the dataset's path")
    try:
        return pq.ParquetFile(path, pre_buffer=False)
    except Exception as error:  # pyarrow raises ArrowInvalid & co. for a file that is not parquet
        raise SourceError(f"{path}: not a readable parquet file ({error}); fetch it again") from error


def parquet_batches(
    parquet: pq.ParquetFile, path: str, columns: list[str] | None, rows: int = 65_536
) -> Iterator[pa.RecordBatch]:
    """Record batches of `rows` rows of a ParquetFile, one row group in memory at a time (single-threaded, in order).

    A row group that cannot be read raises SourceError naming the file, the row group and its first row.
    """
    first_row = 0
    for group in range(parquet.metadata.num_row_groups):
        try:
            table = parquet.read_row_group(group, columns=columns, use_threads=False)
        except Exception as error:  # pyarrow's errors for a truncated or corrupt file
            raise SourceError(
                f"{path}: cannot read row group {group} (rows from {first_row}): {error}; the file is truncated or "
                "corrupt: fetch it again"
            ) from error
        yield from table.to_batches(rows)
        first_row += table.num_rows


def decode_text(data: bytes, encoding: str, where: str) -> str:
    """Decode `data`; a byte the encoding rejects raises ValueError naming its line (1-based) and byte offset (the
    caller turns it into a bad record); an unknown encoding raises SourceError naming `where`.
    """
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ValueError(
            f"not valid {encoding} at line {line} (byte {error.start}: {data[error.start:error.start + 4]!r}); "
            "set the dataset's `encoding`"
        ) from None
    except LookupError:
        raise SourceError(
            f"{where}: unknown encoding {encoding!r}; set the dataset's `encoding` to e.g. utf-8"
        ) from None


def dataset_meta(dataset: dict, default_domain: str | None) -> dict[str, str | int | None]:
    """Metadata every document of `dataset` shares: its `domain` (the config's, else the format's default)."""
    domain = dataset.get("domain", default_domain)
    return {"domain": domain} if domain is not None else {}


def check_meta(meta: dict[str, str | int | None]) -> dict[str, str | int | None]:
    """Drop empty values; fail loudly (a bug) on names that are not fixed metadata fields."""
    unknown = set(meta) - set(METADATA_FIELDS)
    if unknown:
        raise ValueError(f"not metadata fields: {sorted(unknown)}; known: {METADATA_FIELDS}")
    return {key: value for key, value in meta.items() if value is not None and value != ""}


_YEAR = re.compile(r"(?<!\d)(1[0-9]{3}|20[0-9]{2})(?!\d)")


def year_of(text: str | None) -> int | None:
    """The first plausible four-digit year (1000-2099) in `text`, else None."""
    if not text:
        return None
    match = _YEAR.search(text)
    return int(match.group(1)) if match else None
