#!/usr/bin/env bash
# GPU scan benchmark (issue 4): neurotext's scan loop (neurotext.scan.scan_tokens: length-sorted batches under a
# token budget, hooks pooling every layer, int64 keys, running top K on the device with torch.topk) on a
# BERT-base-shaped model with random weights, over synthetic sentences whose token lengths follow the demo corpus
# (tweets, movie snippets, Brown sentences under the MiniLM tokenizer: mean ~25 tokens). No tokenizer, no files.
#
# Prints sentences/s, model FLOP/s against the chip's nominal dense peak and a GEMM measured in the same run, the
# top-K share of the time, peak memory, and the projected hours for the paper's 82M sentences.
#
#   bash benchmarks/gpu_scan.sh                 # one H200: 200k sentences, BERT-base, bf16 autocast, K = 10,000
#   bash benchmarks/gpu_scan.sh --smoke         # CPU, tiny sizes (a few seconds): checks the script itself
#   bash benchmarks/gpu_scan.sh --help
#
# Needs: python with torch, transformers, numpy, pyarrow, tqdm (PYTHON=... to choose; the repo's .venv if present).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONPATH="$REPO/src${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
    if [[ -x "$REPO/.venv/bin/python" ]]; then PY="$REPO/.venv/bin/python"; else PY="python3"; fi
fi
exec "$PY" - "$@" <<'PYTHON'
import argparse
import logging
import resource
import sys
import time

import numpy as np
import torch

parser = argparse.ArgumentParser(prog="benchmarks/gpu_scan.sh", description=__doc__ or "GPU scan benchmark")
parser.add_argument("--smoke", action="store_true", help="CPU, tiny model and sizes (tests the script)")
parser.add_argument("--sentences", type=int, help="sentences to scan (default 200,000; smoke 500)")
parser.add_argument("--k", type=int, help="top K per neuron (default 10,000; smoke 20)")
parser.add_argument("--token-budget", type=int, help="padded tokens per batch (default 65,536; smoke 2,048)")
parser.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16", "float16"])
parser.add_argument("--device", default=None, choices=["auto", "cpu", "cuda"], help="default auto (smoke: cpu)")
parser.add_argument("--peak-tflops", type=float, default=989.0, help="nominal dense peak of the chip (H200 bf16)")
parser.add_argument("--warmup", type=int, help="sentences scanned once before timing (default 20,000; smoke 100)")
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args(sys.argv[1:])

from transformers import BertConfig, BertModel  # noqa: E402

from neurotext.encoder import Encoder, ModelSettings, ScanSettings, Tokens, plan_batches, select_autocast_dtype, select_device  # noqa: E402
from neurotext.scan import scan_tokens  # noqa: E402
from neurotext.validate import with_defaults  # noqa: E402

logging.basicConfig(level=logging.WARNING, format="%(message)s")
smoke = args.smoke
n_sentences = args.sentences or (500 if smoke else 200_000)
k = args.k or (20 if smoke else 10_000)
token_budget = args.token_budget or (2_048 if smoke else 65_536)
warmup = args.warmup if args.warmup is not None else (100 if smoke else 20_000)
device = select_device(args.device or ("cpu" if smoke else "auto"))
if device.type == "cpu" and not smoke:
    print("warning: no CUDA device; running the full-size benchmark on the CPU will take very long", flush=True)
shape = (
    dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256)
    if smoke
    else dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)
)
MAX_LENGTH = 128

# Token lengths of the demo corpus (5,000 tweets + 5,000 movie snippets + 5,000 Brown sentences, MiniLM tokenizer,
# special tokens included, capped at 128): counts per bin [edge, next edge).
EDGES = [3, 7, 11, 15, 19, 23, 27, 31, 35, 39, 43, 47, 51, 55, 59, 63, 67, 71, 75, 79, 83, 87, 91, 95, 99, 103,
         107, 111, 115, 119, 123, 127, 129]
COUNTS = [492, 1077, 1546, 1735, 1778, 1806, 1584, 1336, 1059, 670, 443, 254, 166, 96, 53, 31, 17, 13, 10, 11, 3,
          6, 2, 3, 0, 5, 0, 0, 0, 0, 2, 2]


def synthetic_tokens(n: int, vocab_size: int, rng: np.random.Generator) -> Tokens:
    """n sentences of [CLS] random word ids [SEP] with demo-corpus lengths."""
    counts = np.asarray(COUNTS, dtype=np.float64)
    bins = rng.choice(len(counts), size=n, p=counts / counts.sum())
    lengths = rng.integers(np.asarray(EDGES[:-1])[bins], np.asarray(EDGES[1:])[bins]).clip(3, MAX_LENGTH)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    total = int(offsets[-1])
    input_ids = rng.integers(1000, vocab_size, size=total).astype(np.int32)
    special = np.zeros(total, dtype=bool)
    input_ids[offsets[:-1]], input_ids[offsets[1:] - 1] = 101, 102
    special[offsets[:-1]] = special[offsets[1:] - 1] = True
    zeros = np.zeros(total, dtype=np.int32)
    return Tokens(offsets, input_ids, special, zeros, zeros, np.zeros(n, dtype=bool))


def subset(tokens: Tokens, n: int) -> Tokens:
    end = int(tokens.offsets[n])
    return Tokens(tokens.offsets[: n + 1], tokens.input_ids[:end], tokens.special_mask[:end], tokens.char_start[:end],
                  tokens.char_end[:end], tokens.truncated[:n])


def synchronize() -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def gemm_tflops(dtype: torch.dtype) -> float:
    """Measured matrix-multiply throughput (TFLOP/s) of a large square GEMM on this device and dtype."""
    size = 1024 if smoke else 8192
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    for _ in range(3):
        a @ b
    synchronize()
    repeats = 3 if smoke else 50
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    synchronize()
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e12


def model_flops(lengths: np.ndarray, batches: list[np.ndarray], hidden: int, inter: int, layers: int) -> tuple[float, float]:
    """(useful FLOPs on real tokens, executed FLOPs on padded batches): dense layers 2(4H^2 + 2HI) per token and
    attention scores and mixing 4 T H per token per layer."""
    dense = 2 * (4 * hidden * hidden + 2 * hidden * inter)
    lengths = lengths.astype(np.float64)
    useful = layers * float((dense * lengths + 4 * hidden * lengths**2).sum())
    executed = 0.0
    for rows in batches:
        width = float(lengths[rows].max())
        executed += layers * len(rows) * (dense * width + 4 * hidden * width**2)
    return useful, executed


rng = np.random.default_rng(args.seed)
config = BertConfig(vocab_size=30522, max_position_embeddings=512, **shape)
torch.manual_seed(args.seed)
model = BertModel(config, add_pooling_layer=False)
autocast = select_autocast_dtype(args.dtype, device)
encoder = Encoder(model.to(device), site="hidden", device=device, autocast_dtype=autocast)
model_settings = ModelSettings.from_config(with_defaults("model", {"max_length": MAX_LENGTH}))
scan_settings = ScanSettings.from_config(with_defaults("scan", {"k": k, "token_budget": token_budget, "device": device.type,
                                                        "dtype": args.dtype, "threads": torch.get_num_threads()}))
tokens = synthetic_tokens(n_sentences, config.vocab_size, rng)
ids = np.arange(n_sentences, dtype=np.uint32)
name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
print(f"device: {name} ({device.type}), autocast {autocast}, torch {torch.__version__}, threads {torch.get_num_threads()}")
params = sum(p.numel() for p in model.encoder.parameters())
print(f"model: BERT random weights, {config.num_hidden_layers} layers x {config.hidden_size} "
      f"(intermediate {config.intermediate_size}), {params / 1e6:.1f}M encoder parameters")

if warmup:
    scan_tokens(encoder, ids[:warmup], subset(tokens, min(warmup, n_sentences)), model_settings, scan_settings, "warmup")
synchronize()
if device.type == "cuda":
    torch.cuda.reset_peak_memory_stats(device)
start = time.perf_counter()
result = scan_tokens(encoder, ids, tokens, model_settings, scan_settings, "scan", topk_strategy="topk")
synchronize()
elapsed = time.perf_counter() - start
assert result.layers[0].keys.shape == (config.hidden_size, min(k, n_sentences))

lengths = tokens.lengths
batches = plan_batches(lengths, ids, token_budget)
useful, executed = model_flops(lengths, batches, config.hidden_size, config.intermediate_size, config.num_hidden_layers)
padded = sum(len(b) * int(lengths[b].max()) for b in batches)
rate = n_sentences / elapsed
measured = gemm_tflops(autocast or torch.float32)
print(f"sentences: {n_sentences:,}, real tokens {lengths.sum():,} (mean {lengths.mean():.1f}), padded {padded:,} "
      f"({100 * (padded / lengths.sum() - 1):.1f}% padding), {len(batches)} batches, token budget {token_budget:,}, K {k:,}")
print(f"scan: {elapsed:.2f} s, {rate:,.0f} sentences/s, {lengths.sum() / elapsed:,.0f} tokens/s")
print(f"model FLOP/s: {useful / elapsed / 1e12:.1f} TFLOP/s useful ({executed / elapsed / 1e12:.1f} executed with padding); "
      f"{100 * useful / elapsed / 1e12 / args.peak_tflops:.1f}% of the nominal {args.peak_tflops:.0f} TFLOP/s dense peak, "
      f"{100 * useful / elapsed / 1e12 / measured:.1f}% of the measured GEMM {measured:.1f} TFLOP/s")

# The top-K share: the same keys through the accumulator alone (random keys, the scan's batch shapes).
from neurotext.topk import TopK  # noqa: E402

accumulators = [TopK(config.hidden_size, k, np.int16, device=device, strategy="topk") for _ in range(config.num_hidden_layers)]
keys = torch.randint(-(2**62), 2**62, (max(len(b) for b in batches), config.hidden_size), device=device)
payload = torch.zeros_like(keys, dtype=torch.int16)
synchronize()
start = time.perf_counter()
for rows in batches:
    for accumulator in accumulators:
        accumulator.add(keys[: len(rows)], payload[: len(rows)])
for accumulator in accumulators:
    accumulator.result()
synchronize()
topk_seconds = time.perf_counter() - start
print(f"top K alone: {topk_seconds:.2f} s ({100 * topk_seconds / elapsed:.0f}% of the scan time)")
if device.type == "cuda":
    print(f"peak device memory: {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB")
print(f"peak host RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")
print(f"projected hours for 82M sentences: {82e6 / rate / 3600:.2f}")
PYTHON
