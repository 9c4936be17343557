#!/usr/bin/env python
"""Loader throughput on large synthetic inputs in the paper's big formats, and the projected corpus build.

Inputs (generated under --workdir, default /tmp/neurotext-bench-corpus, reused when present; never committed):
  * wiki: an `enwiki-...-pages-articles.xml.bz2` dump of --size-mb MB of XML whose pages are the real articles of
    gensim's dump sample (gensim/test/test_data/enwiki-latest-...-shortened.bz2, 106 articles and 100 redirects)
    repeated with fresh ids and titles, so the wikitext is real (templates, refs, tables, links).
  * sentiment140: `training.1600000.processed.noemoticon.csv` of --size-mb MB: the exact six-column latin-1 format,
    tweets of 5-25 words drawn from a fixed vocabulary, some with latin-1 bytes and HTML entities.
  * bookcorpus: a directory of plain-text books (~400 KB each) totalling --size-mb MB of sentences.
  * bookcorpus_parquet: one parquet file in the HF export's layout (a `text` column, a sentence a row).
  * bookcorpus_lines: `books_large_p1.txt` of --size-mb MB, the published format (one lowercased, tokenized sentence
    a line), read in line mode (`neurotext.loaders.lines`). Besides the loader it measures a whole `corpus_part`
    job (`build_part`: cleaning and writing the part file) at --size-mb and at LINE_SMALL_MB, and prints the peak
    RSS growth between the two: line mode streams, so it stays flat however big the file.

Each measurement runs in a fresh process (`--measure`), so peak RSS (VmHWM) is that of one loader job:
documents/s, MB/s of (uncompressed) input per CPU second (process time: the loaders are single-threaded, and CPU
time is what a dedicated core gives; wall time is printed too), peak RSS. For wiki it also measures one part of
--parts with the part protocol of `neurotext.loaders.wiki.load` (only that part's articles are rendered), i.e.
the loader cost of one parallel `corpus_part` job. The loaders stream, so time scales linearly with input size and memory does not;
the projection multiplies by the paper's input sizes (stated below) and spreads parts over a 16-core node.
Loader cost only: sentence splitting and cleaning (the corpus stage) come on top.

  python benchmarks/corpus.py --size-mb 64            # ~1-3 minutes on 2 cores (generation included)
  python benchmarks/corpus.py --size-mb 1024          # the 1 GB measurement (~15 CPU-minutes, most of it wiki)
"""

from __future__ import annotations

import argparse
import bz2
import json
import random
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

NODE_CORES = 16
#: Paper inputs (uncompressed bytes) used for the projection. Wikipedia: enwiki-20201220-pages-articles.xml.bz2 is
#: ~18 GB, ~80 GB of XML of which ~20M pages, 6.2M articles (G: Wikimedia's dump statistics, not measured here).
#: Sentiment140: the real CSV is 238,803,811 bytes. BookCorpus: ~74M sentences, ~4.6 GB of text.
PAPER_INPUT_MB = {
    "wiki": 80_000,
    "sentiment140": 239,
    "bookcorpus": 4_600,
    "bookcorpus_parquet": 4_600,
    "bookcorpus_lines": 4_600,
}
PAPER_PARTS = {"wiki": 16, "sentiment140": 4, "bookcorpus": 16, "bookcorpus_parquet": 16, "bookcorpus_lines": 16}
GENSIM_SAMPLE = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
WORDS = (
    "the of and to a in is was that for it with as on be by at this had not are but from or have an they which one "
    "you were her all she there would their we him been has when who will more no if out so said what up its about "
    "into than them can only other new some could time these two may then do first any my now such like our over "
    "man me even most made after also did many before must through back years where much your way well down should "
    "because each just those people how too little state good very make world still own see men work long get here "
    "between both life being under never day same another know while last might us great old year off come since "
    "against go came right used take three movie love happy today tired great work morning night home friends"
).split()


# -- synthetic inputs ------------------------------------------------------------------------------------------


def gensim_pages() -> tuple[str, list[str]]:
    """(dump header, page XML strings) of gensim's real dump sample."""
    import importlib.util

    spec = importlib.util.find_spec("gensim")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("gensim is not installed: its real dump sample is the wiki benchmark's page source")
    path = Path(list(spec.submodule_search_locations)[0]) / "test" / "test_data" / GENSIM_SAMPLE
    xml = bz2.open(path).read().decode("utf-8")
    header = xml[: xml.index("<page>")]
    return header, re.findall(r"<page>.*?</page>\n", xml, re.DOTALL)


def make_wiki(path: Path, size_mb: int) -> None:
    """A bz2 dump of `size_mb` MB of XML: gensim's real pages repeated with fresh ids and titles."""
    header, pages = gensim_pages()
    target = size_mb << 20
    written = 0
    with bz2.open(path.with_suffix(".tmp"), "wb", compresslevel=6) as out:
        out.write(header.encode())
        copy = 0
        while written < target:
            for page in pages:
                page = re.sub(r"<title>(.*?)</title>", lambda m: f"<title>{m.group(1)} {copy}</title>", page, count=1)
                page = re.sub(r"<id>(\d+)</id>", lambda m: f"<id>{copy}{m.group(1)}</id>", page, count=1)
                data = page.encode()
                out.write(data)
                written += len(data)
            copy += 1
        out.write(b"</mediawiki>\n")
    path.with_suffix(".tmp").rename(path)


def _sentence(rng: random.Random, low: int, high: int) -> str:
    words = rng.choices(WORDS, k=rng.randint(low, high))
    return " ".join(words).capitalize() + rng.choice([".", ".", ".", "!", "?"])


def make_sentiment140(path: Path, size_mb: int) -> None:
    """The exact Sentiment140 CSV layout, `size_mb` MB, latin-1 with entities."""
    rng = random.Random(140)
    target = size_mb << 20
    written = 0
    tweet_id = 1467810369
    with open(path.with_suffix(".tmp"), "wb") as out:
        while written < target:
            text = _sentence(rng, 5, 25)
            if rng.random() < 0.05:
                text += " caf\xe9 &amp; &quot;fun&quot;"
            polarity = rng.choice("04")
            line = (f'"{polarity}","{tweet_id}","Mon Apr 06 22:19:45 PDT 2009","NO_QUERY","user{tweet_id % 99991}",'
                    f'"{text}"\r\n').encode("latin-1")  # fmt: skip
            out.write(line)
            written += len(line)
            tweet_id += 1
    path.with_suffix(".tmp").rename(path)


def make_bookcorpus(path: Path, size_mb: int) -> None:
    """A directory of ~400 KB plain-text books, `size_mb` MB in all."""
    rng = random.Random(1)
    tmp = path.with_suffix(".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    target = size_mb << 20
    written = 0
    book = 0
    while written < target:
        paragraphs = []
        size = 0
        while size < 400_000:
            paragraph = " ".join(_sentence(rng, 4, 30) for _ in range(rng.randint(2, 8)))
            paragraphs.append(paragraph)
            size += len(paragraph) + 2
        data = "\n\n".join(paragraphs).encode()
        (tmp / f"book-{book:05d}.txt").write_bytes(data)
        written += len(data)
        book += 1
    tmp.rename(path)


def make_bookcorpus_lines(path: Path, size_mb: int) -> None:
    """BookCorpus's `books_large_p<N>.txt` format: one lowercased, space-tokenized sentence a line."""
    rng = random.Random(3)
    target = size_mb << 20
    written = 0
    with open(path.with_suffix(".tmp"), "wb") as out:
        while written < target:
            block = "".join(_sentence(rng, 4, 30).lower().replace(".", " .") + "\n" for _ in range(20_000)).encode()
            out.write(block)
            written += len(block)
    path.with_suffix(".tmp").rename(path)


def make_bookcorpus_parquet(path: Path, size_mb: int) -> None:
    """The HF `bookcorpus` parquet export's layout: one lowercased sentence a row in a `text` column."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(2)
    target = size_mb << 20
    written = 0
    with pq.ParquetWriter(path.with_suffix(".tmp"), pa.schema([("text", pa.string())])) as writer:
        while written < target:
            rows = [_sentence(rng, 4, 30).lower() for _ in range(100_000)]
            writer.write_table(pa.table({"text": rows}))
            written += sum(map(len, rows))
    path.with_suffix(".tmp").rename(path)


INPUTS = {
    "wiki": ("enwiki-20201220-pages-articles.xml.bz2", make_wiki),
    "sentiment140": ("training.1600000.processed.noemoticon.csv", make_sentiment140),
    "bookcorpus": ("books", make_bookcorpus),
    "bookcorpus_parquet": ("0000.parquet", make_bookcorpus_parquet),
    "bookcorpus_lines": ("books_large_p1.txt", lambda path, size_mb: make_bookcorpus_lines(path, size_mb)),
}
#: The loader format of each input.
FORMAT_OF = {
    "wiki": "wiki",
    "sentiment140": "sentiment140",
    "bookcorpus": "bookcorpus",
    "bookcorpus_parquet": "bookcorpus",
    "bookcorpus_lines": "bookcorpus",
}
#: BookCorpus's sentences (books_large_p1.txt + books_large_p2.txt), for the line-mode projection.
PAPER_LINES = 74_004_228
#: The small input of the line-mode RSS growth measurement (MB).
LINE_SMALL_MB = 8


def input_path(workdir: Path, name: str, size_mb: int) -> Path:
    """The synthetic input of `name` at `size_mb`, generated on first use."""
    file_name, make = INPUTS[name]
    folder = workdir / f"{name}-{size_mb}mb"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / file_name
    if not path.exists():
        t0 = time.perf_counter()
        make(path, size_mb)
        print(f"  generated {path} in {time.perf_counter() - t0:.0f} s", flush=True)
    return path


# -- measurement -----------------------------------------------------------------------------------------------


def measure(format_name: str, path: str, parts: int | None, part: int | None) -> dict:
    """Stream every record of `path` with the format's loader; counts, seconds, peak RSS (this process)."""
    from neurotext.loaders import BadRecord, load_documents

    dataset: dict = {"name": format_name, "format": format_name}
    if parts is not None:
        dataset.update(parts=parts, part=part)
    documents = rendered = bad = chars = 0
    t0 = time.perf_counter()
    c0 = time.process_time()
    for item in load_documents(path, dataset):
        if isinstance(item, BadRecord):
            bad += 1
            continue
        documents += 1
        if item.text is not None or item.sentences is not None:
            rendered += 1
            chars += len(item.text) if item.text is not None else sum(map(len, item.sentences))
    seconds = time.perf_counter() - t0
    cpu_seconds = time.process_time() - c0
    return {
        "format": format_name,
        "parts": parts,
        "documents": documents,
        "rendered_documents": rendered,
        "bad_records": bad,
        "output_chars": chars,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "peak_rss_mb": peak_rss_mb(),
    }


def measure_build_part(path: str, parts: int, part: int) -> dict:
    """One `corpus_part` job of a line-mode source (train_punkt is a no-op there): seconds, peak RSS."""
    import tempfile

    from neurotext.corpus import build_part, train_punkt

    dataset = {"name": "books", "code": 1, "format": "bookcorpus", "path": path, "parts": parts}
    corpus = {"seed": 0, "max_bad_records": 100, "clean": {}}
    t0, c0 = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        train_punkt(path, dataset, corpus, f"{tmp}/punkt.json")
        build_part(path, f"{tmp}/punkt.json", dataset, corpus, part, f"{tmp}/part{part}.parquet", "bench")
        import pyarrow.parquet as pq

        rows = pq.ParquetFile(f"{tmp}/part{part}.parquet").metadata.num_rows
    return {
        "format": "build_part",
        "parts": parts,
        "documents": rows,
        "sentences": rows,
        "seconds": time.perf_counter() - t0,
        "cpu_seconds": time.process_time() - c0,
        "peak_rss_mb": peak_rss_mb(),
    }


def peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM; unlike ru_maxrss it is not inherited across fork + exec)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_measure(format_name: str, path: Path, parts: int | None = None) -> dict:
    """`measure` (or, for format_name 'build_part', `measure_build_part`) in a fresh process (so peak RSS is one
    job's)."""
    command = [sys.executable, __file__, "--measure", format_name, "--path", str(path)]
    if parts is not None:
        command += ["--parts", str(parts), "--part", "0"]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def input_mb(path: Path) -> float:
    """Uncompressed input size in MB (a bz2 dump is decompressed to count; parquet: the text column's bytes)."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return sum(len(t) for t in pq.read_table(path)["text"].to_pylist()) / 2**20
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20
    if path.suffix == ".bz2":
        size = 0
        with bz2.open(path) as stream:
            while chunk := stream.read(1 << 24):
                size += len(chunk)
        return size / 2**20
    return path.stat().st_size / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=64, help="synthetic input size per format (uncompressed MB)")
    parser.add_argument("--formats", nargs="+", default=list(INPUTS), choices=list(INPUTS))
    parser.add_argument("--parts", type=int, default=16, help="part count for the per-part wiki measurement")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/neurotext-bench-corpus"))
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--part", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure == "build_part":
        print(json.dumps(measure_build_part(args.path, args.parts, args.part or 0)))
        return
    if args.measure:
        parts = args.parts if args.part is not None else None
        print(json.dumps(measure(args.measure, args.path, parts, args.part)))
        return

    results = []
    for name in args.formats:
        path = input_path(args.workdir, name, args.size_mb)
        size = input_mb(path)
        runs = [run_measure(FORMAT_OF[name], path)]
        if name == "wiki":
            runs.append(run_measure(name, path, args.parts))
        if name == "bookcorpus_lines":
            small = run_measure("build_part", input_path(args.workdir, name, LINE_SMALL_MB), 1)
            big = run_measure("build_part", path, 1)
            build_rate = big["sentences"] / big["cpu_seconds"]
            print(f"bookcorpus_lines build_part projection: {PAPER_LINES:,} sentences in {PAPER_PARTS[name]} parts: "
                  f"{PAPER_LINES / build_rate / PAPER_PARTS[name] / 60:.1f} CPU-min a part", flush=True)  # fmt: skip
            print(f"bookcorpus_lines build_part: {LINE_SMALL_MB} MB -> peak RSS {small['peak_rss_mb']:.0f} MB; "
                  f"{size:.0f} MB ({big['sentences']:,} sentences, cpu {big['cpu_seconds']:.1f} s, "
                  f"{big['sentences'] / big['cpu_seconds']:,.0f} sentences/s) -> peak RSS {big['peak_rss_mb']:.0f} MB; "
                  f"growth {big['peak_rss_mb'] - small['peak_rss_mb']:+.0f} MB", flush=True)  # fmt: skip
        for run in runs:
            run["input"] = name
        for run in runs:
            cpu = run["cpu_seconds"]
            run.update(input_mb=round(size, 1), mb_per_s=size / cpu, docs_per_s=run["documents"] / cpu)
            results.append(run)
            label = f"{name} (1 part of {run['parts']})" if run["parts"] else name
            print(f"{label:26s} {size:7.1f} MB {run['documents']:8d} docs  cpu {cpu:6.1f} s "
                  f"(wall {run['seconds']:6.1f})  {run['mb_per_s']:6.2f} MB/s  {run['docs_per_s']:7.0f} docs/s  "
                  f"peak RSS {run['peak_rss_mb']:.0f} MB",
                  flush=True)  # fmt: skip

    print(f"\nProjected loader time of the paper's corpus build on a {NODE_CORES}-core node:")
    full = {r["input"]: r for r in results if r["parts"] is None}
    part_runs = {r["input"]: r for r in results if r["parts"] is not None}
    for name, run in full.items():
        if name not in PAPER_INPUT_MB:
            continue
        paper_mb = PAPER_INPUT_MB[name]
        serial_h = paper_mb / run["mb_per_s"] / 3600
        parts = PAPER_PARTS[name]
        if name in part_runs:
            per_part_h = paper_mb / part_runs[name]["mb_per_s"] / 3600
        elif name == "bookcorpus_lines":
            per_part_h = serial_h / parts  # line mode: each part reads only its byte range
        else:
            per_part_h = serial_h  # every part streams the whole source; the corpus stage keeps 1/parts
        waves = -(-parts // NODE_CORES)
        print(
            f"  {name:18s} {paper_mb:>7,} MB: one pass {serial_h * 60:7.1f} min; {parts:2d} parts of "
            f"{per_part_h * 60:7.1f} min each -> {waves * per_part_h * 60:7.1f} min wall on {NODE_CORES} cores"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
