"""Run a Hugging Face encoder over tokenized sentences and pool its neuron sites per sentence (shared ground).

Used by the scan (top K per neuron, sample activations) and by later stages (token records, fine-tuning).

* Tokenization: the model's fast tokenizer, special tokens added, character offsets kept, truncation at
  `max_length` (counted). Token ids of many sentences live in one flat `Tokens` record (no Python list per token).
* Batch plan: sentences sorted by (token length, sentence_id) and cut into batches of at most `token_budget` padded
  tokens (`plan_batches`), so the plan depends only on the sentences and the config.
* Models: BERT-like encoders and decoder LMs (GPT-2, GPT-NeoX/Pythia, Llama-style), any with a fast tokenizer.
  A decoder's BOS token is prepended when its tokenizer defines one and does not add it itself (as SAELens does);
  BOS is a special token like [CLS]/[SEP].
* Character offsets cover a token's visible characters: leading whitespace (byte-level BPE and SentencePiece
  tokens carry the preceding space, e.g. GPT-2's " cat") is trimmed off, a whitespace-only token gets an empty
  span at its end; a byte-level token holding part of a multi-byte character spans the whole character.
* Sites (`neurotext.features.sites`), captured with hooks and pooled as soon as each layer has run, so at most a
  couple of layers' [batch, tokens, width] activations exist at once: `hidden` = each block's output, `ffn` = the
  MLP's activation, `attn` = the attention output before the residual add. `model.layers` restricts the layers
  run (the forward pass stops after the deepest one). `model.features` maps the site to directions or SAE latents
  per token before pooling (`neurotext.features`).
* Pooling over a sentence's tokens: `max` (also returns the argmax token index), `cls` (token 0; encoders only),
  `mean`, `last` (the last pooled token: a decoder's last real token); with `exclude_special`, special tokens
  ([CLS], [SEP], BOS) are left out of max, mean and last (a sentence with no other token falls back to all its
  tokens).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neurotext.config import ConfigError, require_key
from neurotext.features import FeatureMap, FeatureSettings, load_feature_map
from neurotext.features.sites import SITES, Site, find_sites

log = logging.getLogger("neurotext.encoder")

POOLINGS = ("max", "cls", "mean", "last")
DEVICES = ("auto", "cpu", "cuda")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


# --------------------------------------------------------------------------------------------------------------
# Settings


@dataclass(frozen=True)
class ModelSettings:
    """The config's `model:` block, validated. max_length counts tokens including special tokens. The defaults are
    the config schema's only: ``from_config`` reads the validated block (partial blocks:
    ``neurotext.validate.with_defaults("model", partial)``)."""

    site: str
    pooling: str
    exclude_special: bool
    max_length: int
    features: FeatureSettings
    layers: tuple[int, ...] | None  # None = every layer

    @classmethod
    def from_config(cls, model: Mapping[str, Any]) -> ModelSettings:
        site = require_key(model, "model.site")
        if site not in SITES:
            raise ConfigError(f"model.site = {site!r}: choose one of {', '.join(SITES)}")
        pooling = require_key(model, "model.pooling")
        check_pooling(pooling, "model.pooling")
        max_length = require_key(model, "model.max_length")
        if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 3:
            raise ConfigError(f"model.max_length = {max_length!r}: an integer >= 3 (tokens, special tokens included)")
        exclude_special = require_key(model, "model.exclude_special")
        if not isinstance(exclude_special, bool):
            raise ConfigError(f"model.exclude_special = {exclude_special!r}: true or false")
        layers = require_key(model, "model.layers")
        if layers is not None:
            if (
                not isinstance(layers, list | tuple)
                or not layers
                or any(not isinstance(x, int) or isinstance(x, bool) or x < 1 for x in layers)
            ):
                raise ConfigError(f"model.layers = {layers!r}: null (every layer) or a list of layers >= 1")
            layers = tuple(sorted(set(layers)))
        return cls(
            site=site,
            pooling=pooling,
            exclude_special=exclude_special,
            max_length=max_length,
            features=FeatureSettings.from_config(model),
            layers=layers,
        )


@dataclass(frozen=True)
class ScanSettings:
    """The config's `scan:` block, validated. token_budget: padded tokens per batch; threads: torch intra-op. The
    defaults are the config schema's only (partial blocks: ``neurotext.validate.with_defaults("scan", partial)``)."""

    k: int
    token_budget: int
    device: str
    dtype: str
    threads: int

    @classmethod
    def from_config(cls, scan: Mapping[str, Any]) -> ScanSettings:
        values = {name: require_key(scan, f"scan.{name}") for name in ("k", "token_budget", "threads")}
        for name, value in values.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"scan.{name} = {value!r}: a positive integer")
        device = require_key(scan, "scan.device")
        if device not in DEVICES:
            raise ConfigError(f"scan.device = {device!r}: choose one of {', '.join(DEVICES)}")
        dtype = require_key(scan, "scan.dtype")
        if dtype not in DTYPES:
            raise ConfigError(f"scan.dtype = {dtype!r}: choose one of {', '.join(DTYPES)}")
        return cls(device=device, dtype=dtype, **values)


def check_pooling(pooling: str, key: str) -> None:
    """Raise ConfigError naming `key` when `pooling` is not max, cls, mean or last."""
    if pooling not in POOLINGS:
        raise ConfigError(f"{key} = {pooling!r}: choose one of {', '.join(POOLINGS)}")


def select_device(requested: str = "auto") -> torch.device:
    """'auto' -> CUDA when available, else the CPU; 'cuda' without a GPU is an error naming scan.device."""
    if requested not in DEVICES:
        raise ConfigError(f"scan.device = {requested!r}: choose one of {', '.join(DEVICES)}")
    if requested == "cpu" or (requested == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError(
            "scan.device = 'cuda' but torch sees no CUDA device on this machine; use scan.device: auto (falls back "
            "to the CPU) or run the job on a GPU node"
        )
    return torch.device("cuda")


def select_autocast_dtype(requested: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for `scan.dtype` on `device`, or None to run in float32.

    float16 has no fast CPU kernels, so on the CPU it falls back to float32 with a warning; bfloat16 runs on both.
    """
    if requested not in DTYPES:
        raise ConfigError(f"scan.dtype = {requested!r}: choose one of {', '.join(DTYPES)}")
    if requested == "float32":
        return None
    if device.type == "cpu" and requested == "float16":
        log.warning("scan.dtype = float16 is not supported on the CPU; running in float32")
        return None
    return DTYPES[requested]


# --------------------------------------------------------------------------------------------------------------
# Tokens and batch plans


@dataclass
class Tokens:
    """Token ids of n sentences stored flat: sentence i owns positions [offsets[i], offsets[i + 1]).

    offsets: int64 [n + 1]; input_ids: int32 [total]; special_mask: bool [total] (True for [CLS]/[SEP]/...);
    char_start / char_end: int32 [total] character offsets in the sentence text (special tokens (0, 0));
    truncated: bool [n] (the sentence had more than max_length tokens and was cut).
    """

    offsets: np.ndarray
    input_ids: np.ndarray
    special_mask: np.ndarray
    char_start: np.ndarray
    char_end: np.ndarray
    truncated: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @functools.cached_property
    def lengths(self) -> np.ndarray:
        """Tokens per sentence, int64 [n] (computed once)."""
        return np.diff(self.offsets)

    def row(self, index: int) -> np.ndarray:
        """Token ids (int32) of sentence `index`."""
        return self.input_ids[self.offsets[index] : self.offsets[index + 1]]


def load_tokenizer(model_dir: str | os.PathLike[str], key: str = "model.path"):
    """The model's fast tokenizer (`AutoTokenizer`, offline). A slow-only tokenizer is a ConfigError naming `key`."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    except (OSError, ValueError, KeyError) as error:
        raise ConfigError(f"{key} = {str(model_dir)!r}: cannot load its tokenizer ({error})") from error
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError(f"{key} = {str(model_dir)!r}: needs a fast tokenizer (tokenizer.json) for character offsets")
    return tokenizer


def tokenize(tokenizer, texts: Sequence[str], max_length: int, chunk_size: int = 10_000) -> Tokens:
    """Tokenize `texts` with special tokens and offsets, truncating at `max_length` tokens (special included)."""
    from tokenizers import Tokenizer

    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())  # a private copy we may reconfigure
    backend.no_padding()
    add_bos(backend, tokenizer)
    backend.enable_truncation(max_length)
    lengths: list[np.ndarray] = []
    ids: list[np.ndarray] = []
    specials: list[np.ndarray] = []
    starts: list[np.ndarray] = []
    ends: list[np.ndarray] = []
    truncated: list[np.ndarray] = []
    for begin in range(0, len(texts), chunk_size):  # flat arrays per chunk: no numpy object per sentence is kept
        encodings = backend.encode_batch(list(texts[begin : begin + chunk_size]), add_special_tokens=True)
        lengths.append(np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings)))
        truncated.append(np.fromiter((len(e.overflowing) > 0 for e in encodings), dtype=bool, count=len(encodings)))
        ids.append(np.fromiter((i for e in encodings for i in e.ids), dtype=np.int32))
        specials.append(np.fromiter((m for e in encodings for m in e.special_tokens_mask), dtype=bool))
        spans = np.fromiter((c for e in encodings for span in e.offsets for c in span), dtype=np.int32)
        chunk_texts = texts[begin : begin + chunk_size]
        starts.append(trim_leading_whitespace(chunk_texts, lengths[-1], spans[0::2], spans[1::2]))
        ends.append(spans[1::2])

    def flat(parts: list[np.ndarray], dtype) -> np.ndarray:
        return np.concatenate(parts).astype(dtype, copy=False) if parts else np.empty(0, dtype=dtype)

    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(flat(lengths, np.int64), out=offsets[1:])
    return Tokens(
        offsets=offsets,
        input_ids=flat(ids, np.int32),
        special_mask=flat(specials, bool),
        char_start=flat(starts, np.int32),
        char_end=flat(ends, np.int32),
        truncated=flat(truncated, bool),
    )


def add_bos(backend, tokenizer) -> bool:
    """Make `backend` (a `tokenizers.Tokenizer`) prepend the tokenizer's BOS token when the tokenizer defines one
    and does not add it itself (GPT-2, Pythia); True when it was added. Encoders' tokenizers have no BOS or add it."""
    from tokenizers import processors

    bos = getattr(tokenizer, "bos_token", None)
    bos_id = getattr(tokenizer, "bos_token_id", None)
    if bos is None or bos_id is None or getattr(tokenizer, "cls_token", None) is not None:
        return False
    probe = backend.encode("a", add_special_tokens=True)
    if probe.ids and probe.ids[0] == bos_id:
        return False
    template = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, int(bos_id))]
    )
    existing = backend.post_processor
    backend.post_processor = processors.Sequence([existing, template]) if existing is not None else template
    return True


#: Code points that count as whitespace when trimming token offsets (str.isspace(); all lie below U+3100).
_WHITESPACE = np.array([c for c in range(0x3100) if chr(c).isspace()], dtype=np.uint32)


def trim_leading_whitespace(
    texts: Sequence[str], lengths: np.ndarray, char_start: np.ndarray, char_end: np.ndarray
) -> np.ndarray:
    """`char_start` int32 [total] moved past leading whitespace of each token span (never beyond `char_end`):
    byte-level BPE / SentencePiece tokens such as GPT-2's " cat" then cover "cat" only, like WordPiece offsets."""
    if not len(char_start):
        return char_start
    text_lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    base = np.repeat(np.concatenate([[0], np.cumsum(text_lengths)[:-1]]), lengths)
    codes = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32)
    is_space = np.append(np.isin(codes, _WHITESPACE), False)
    start = char_start.astype(np.int64)
    end = char_end.astype(np.int64)
    move = (start < end) & is_space[np.minimum(base + start, len(codes))]
    while move.any():
        start[move] += 1
        move &= (start < end) & is_space[np.minimum(base + start, len(codes))]
    return start.astype(np.int32)


def plan_batches(lengths: np.ndarray, sentence_ids: np.ndarray, token_budget: int) -> list[np.ndarray]:
    """Batch plan: row indices sorted by (length, sentence_id), cut greedily so that each batch's padded size
    (rows x longest row) stays within `token_budget`; a sentence longer than the budget gets a batch of its own."""
    if token_budget < 1:
        raise ConfigError(f"scan.token_budget = {token_budget!r}: a positive integer")
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.lexsort((np.asarray(sentence_ids), lengths))
    batches: list[np.ndarray] = []
    sorted_lengths = lengths[order]
    start, n = 0, len(order)
    while start < n:
        # Rows are sorted by length, so the batch [start, start + r) pads to sorted_lengths[start + r - 1] and its
        # cost r x that length grows with r: take the largest r within budget (at least 1).
        window = min(n - start, max(1, token_budget // max(int(sorted_lengths[start]), 1)))
        counts = np.arange(1, window + 1)
        rows = max(1, int(np.count_nonzero(counts * sorted_lengths[start : start + window] <= token_budget)))
        batches.append(order[start : start + rows])
        start += rows
    return batches


@dataclass
class TokenBatch:
    """A padded batch on the model's device.

    input_ids: int64 [B, T]; attention_mask: int64 [B, T] (1 = real token); pool_mask: bool [B, T] (tokens that
    max and mean pooling read: real tokens, minus special tokens when exclude_special).
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    pool_mask: torch.Tensor


def make_batch(
    tokens: Tokens, rows: np.ndarray, exclude_special: bool, device: torch.device, pad_id: int = 0
) -> TokenBatch:
    """Pad the sentences `rows` of `tokens` to their longest length with `pad_id` (masked out by the attention mask;
    a decoder's sequence-classification head also finds each row's last real token by it) and move them to
    `device` (pinned memory and asynchronous copies on CUDA)."""
    lengths = tokens.lengths[rows]
    width = int(lengths.max()) if len(rows) else 0
    positions = np.arange(width)[np.newaxis, :]
    real = positions < lengths[:, np.newaxis]
    flat_index = (tokens.offsets[rows][:, np.newaxis] + positions)[real]
    input_ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    input_ids[real] = tokens.input_ids[flat_index]
    pool = real.copy()
    if exclude_special:
        pool[real] = ~tokens.special_mask[flat_index]
        empty = ~pool.any(axis=1)
        pool[empty] = real[empty]  # only special tokens: pool over all of them
    host = (torch.from_numpy(input_ids), torch.from_numpy(real.astype(np.int64)), torch.from_numpy(pool))
    if device.type == "cuda":
        host = tuple(t.pin_memory() for t in host)
    on_device = tuple(t.to(device, non_blocking=True) for t in host)
    return TokenBatch(*on_device)


# --------------------------------------------------------------------------------------------------------------
# Pooling


@dataclass
class Pooled:
    """One layer's pooled activations of a batch: values float32 [B, H] on the model's device; token_index int64
    [B, H] for max and last pooling (index into the sentence's tokens of the token read), None for cls and mean."""

    values: torch.Tensor
    token_index: torch.Tensor | None


def pool_activations(activations: torch.Tensor, pool_mask: torch.Tensor, pooling: str) -> Pooled:
    """Pool [B, T, H] activations over tokens: masked max (with argmax), [CLS] (token 0), or masked mean."""
    if pooling == "max":
        masked = activations.masked_fill(~pool_mask[:, :, None], float("-inf"))
        values, index = masked.max(dim=1)
        return Pooled(values.float(), index)
    if pooling == "cls":
        return Pooled(activations[:, 0, :].float(), None)
    if pooling == "mean":
        weights = pool_mask.to(torch.float32)[:, :, None]
        total = (activations.float() * weights).sum(dim=1)
        return Pooled(total / weights.sum(dim=1).clamp_min(1.0), None)
    if pooling == "last":
        positions = torch.arange(pool_mask.shape[1], device=pool_mask.device)
        last = torch.where(pool_mask, positions, -1).amax(dim=1)  # [B]
        values = activations[torch.arange(len(last), device=last.device), last].float()
        return Pooled(values, last[:, None].expand(-1, values.shape[1]))
    raise ConfigError(f"model.pooling = {pooling!r}: choose one of {', '.join(POOLINGS)}")


# --------------------------------------------------------------------------------------------------------------
# The encoder


class _StopForward(Exception):
    """Raised by the hook of the deepest scanned layer: the blocks above it are never run."""


class Encoder:
    """A loaded transformer (encoder or decoder LM) that pools its sites (or features of them) per sentence.

    Attributes: model (eval mode, on `device`), device, autocast_dtype (None = float32), site ('hidden', 'ffn' or
    'attn'), is_decoder, n_layers (blocks of the model), layers (the scanned layers, 1-based, ascending; default all),
    n_neurons (units per scanned layer: site neurons, directions or SAE latents), site_modules (the hooked module
    of each block; `sites` says whether a hook reads its input or output). Layers are numbered 1..n_layers in
    results (index 0 of site_modules is layer 1).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        site: str = "hidden",
        device: torch.device | None = None,
        autocast_dtype: torch.dtype | None = None,
        key: str = "model.path",
        layers: Sequence[int] | None = None,
        features: FeatureSettings | None = None,
    ) -> None:
        if site not in SITES:
            raise ConfigError(f"model.site = {site!r}: choose one of {', '.join(SITES)}")
        self.model = model.eval()
        self.device = device or next(model.parameters()).device
        self.autocast_dtype = autocast_dtype
        self.site = site
        config = getattr(model, "config", None)
        self.is_decoder = bool(getattr(config, "is_decoder", False)) or _is_decoder_type(config)
        self.sites: list[Site] = find_sites(model, site, key)
        self.site_modules = [s.module for s in self.sites]
        self.n_layers = len(self.sites)
        self.layers = list(layers) if layers else list(range(1, self.n_layers + 1))
        if any(not 1 <= layer <= self.n_layers for layer in self.layers):
            raise ConfigError(f"model.layers = {self.layers}: the model has layers 1..{self.n_layers}")
        self.features = features or FeatureSettings()
        self.feature_maps: dict[int, FeatureMap] = {}
        if not self.features.is_neurons:
            for layer in self.layers:
                feature_map = load_feature_map(self.features, layer)
                width = self.sites[layer - 1].width
                if feature_map.d_in != width:
                    raise ConfigError(
                        f"{self.features.key()}: layer {layer}'s {self.features.kind} read {feature_map.d_in}-wide "
                        f"vectors, but site {site!r} of the model is {width} wide"
                    )
                self.feature_maps[layer] = feature_map.to(self.device)
        widths = {self.width(layer) for layer in self.layers}
        if len(widths) != 1:
            raise ConfigError(
                f"{self.features.key()}: every layer needs the same number of features, found {sorted(widths)}"
            )
        self.n_neurons = widths.pop()

    def width(self, layer: int) -> int:
        """Units of `layer` (1-based): the site's width, or the number of directions / SAE latents."""
        found = self.feature_maps.get(layer)
        return found.width if found is not None else self.sites[layer - 1].width

    def site_activations(self, layer: int, activations: torch.Tensor) -> torch.Tensor:
        """Site activations [B, T, width] of `layer` mapped to its features (float32 [B, T, n_features]); neurons
        are returned as they are."""
        found = self.feature_maps.get(layer)
        return activations if found is None else found(activations)

    def register_site_hook(
        self, layer: int, fn: Callable[[torch.Tensor], None]
    ) -> torch.utils.hooks.RemovableHandle:
        """Call `fn(features [B, T, n_neurons])` when `layer` (1-based) has run; returns the hook handle."""
        return self.sites[layer - 1].register(lambda acts: fn(self.site_activations(layer, acts)))

    @classmethod
    def load(
        cls,
        model_dir: str | os.PathLike[str],
        site: str = "hidden",
        device: str = "auto",
        dtype: str = "float32",
        threads: int | None = None,
        key: str = "model.path",
        layers: Sequence[int] | None = None,
        features: FeatureSettings | None = None,
    ) -> Encoder:
        """Load the model in `model_dir` (offline) on `device` ('auto', 'cpu', 'cuda') with the sdpa attention.

        `threads` sets torch's intra-op threads. Errors name `key` (the config key of the model path), site or
        device as needed: a directory that holds neither an encoder nor a decoder LM (an encoder-decoder, no
        weights) is refused.
        """
        if site not in SITES:
            raise ConfigError(f"model.site = {site!r}: choose one of {', '.join(SITES)}")
        if threads:
            torch.set_num_threads(int(threads))
        torch_device = select_device(device)
        autocast_dtype = select_autocast_dtype(dtype, torch_device)
        check_model_kind(model_dir, key)
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # keep job logs to our own progress bars
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                model = AutoModel.from_pretrained(
                    str(model_dir), local_files_only=True, attn_implementation="sdpa", dtype=torch.float32
                )
            except (OSError, ValueError, RuntimeError) as error:
                raise ConfigError(f"{key} = {str(model_dir)!r}: cannot load the model weights ({error})") from error
        model.to(torch_device)
        log.info(
            "model %s on %s (%s), site %s, features %s",
            Path(model_dir).name,
            torch_device,
            "float32" if autocast_dtype is None else str(autocast_dtype).replace("torch.", ""),
            site,
            (features or FeatureSettings()).kind,
        )
        return cls(
            model, site=site, device=torch_device, autocast_dtype=autocast_dtype, key=key, layers=layers,
            features=features,
        )  # fmt: skip

    @classmethod
    def from_settings(cls, model_dir: str | os.PathLike[str], model: ModelSettings, scan: ScanSettings) -> Encoder:
        """`load` with the `model:` and `scan:` settings (site, layers, features, device, dtype, threads)."""
        return cls.load(
            model_dir, site=model.site, device=scan.device, dtype=scan.dtype, threads=scan.threads,
            layers=model.layers, features=model.features,
        )  # fmt: skip

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    def check_pooling(self, pooling: str, key: str = "model.pooling") -> None:
        """`check_pooling`, and a decoder has no [CLS]: `cls` pooling on a decoder is an error naming `key`."""
        check_pooling(pooling, key)
        if pooling == "cls" and self.is_decoder:
            raise ConfigError(
                f"{key} = 'cls': a decoder model has no [CLS] token (token 0 is BOS); use max, mean or last"
            )

    def run(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, on_layer: Callable[[int, torch.Tensor], None],
            layers: Sequence[int] | None = None) -> None:  # fmt: skip
        """Run one padded batch and call ``on_layer(layer, features [B, T, n_neurons])`` for each of `layers`
        (default: the scanned layers) in order; the forward pass stops after the deepest of them."""
        wanted = sorted(set(layers if layers is not None else self.layers))
        if not wanted:
            return
        deepest = wanted[-1]

        def make_hook(layer: int) -> Callable[[torch.Tensor], None]:
            def hook(acts: torch.Tensor) -> None:
                on_layer(layer, acts)
                if layer == deepest and deepest < self.n_layers:
                    raise _StopForward

            return hook

        handles = [self.register_site_hook(layer, make_hook(layer)) for layer in wanted]
        try:
            with torch.inference_mode(), self._autocast():
                self.model(input_ids=input_ids, attention_mask=attention_mask)
        except _StopForward:
            pass
        finally:
            for handle in handles:
                handle.remove()

    def pool(self, batch: TokenBatch, poolings: Sequence[str]) -> dict[str, list[Pooled]]:
        """Run one batch; for each pooling, one `Pooled` per scanned layer (index i = `self.layers[i]`)."""
        for pooling in poolings:
            self.check_pooling(pooling)
        results: dict[str, list[Pooled]] = {pooling: [] for pooling in poolings}

        def on_layer(_layer: int, activations: torch.Tensor) -> None:
            for pooling in poolings:
                results[pooling].append(pool_activations(activations, batch.pool_mask, pooling))

        self.run(batch.input_ids, batch.attention_mask, on_layer)
        return results

    def iter_pooled(
        self,
        tokens: Tokens,
        batches: Sequence[np.ndarray],
        poolings: Sequence[str],
        exclude_special: bool,
        progress: Callable[[Any], Any] | None = None,
    ) -> Iterator[tuple[np.ndarray, dict[str, list[Pooled]]]]:
        """For each batch of row indices: (rows, `pool` results). `progress` wraps the batch iterable."""
        iterable = progress(batches) if progress else batches
        for rows in iterable:
            batch = make_batch(tokens, rows, exclude_special, self.device)
            yield rows, self.pool(batch, poolings)


def _is_decoder_type(config: Any) -> bool:
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    model_type = getattr(config, "model_type", None)
    return model_type is not None and model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES


def check_model_kind(model_dir: str | os.PathLike[str], key: str = "model.path") -> str:
    """'encoder' or 'decoder' for a model directory; anything else is refused, naming `key`.

    An encoder is a model type with a masked-LM head in transformers (BERT, RoBERTa, DistilBERT, ELECTRA, ...) not
    configured as a decoder; a decoder is a causal LM model type (GPT-2, GPT-NeoX, Llama, ...). Encoder-decoders
    (T5, BART) are refused.
    """
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    try:
        config = AutoConfig.from_pretrained(str(model_dir), local_files_only=True)
    except (OSError, ValueError, KeyError) as error:
        raise ConfigError(f"{key} = {str(model_dir)!r}: cannot read the model config ({error})") from error
    model_type = getattr(config, "model_type", None)
    if getattr(config, "is_encoder_decoder", False):
        kind = None
    elif model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES and not getattr(config, "is_decoder", False):
        kind = "encoder"
    elif model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        kind = "decoder"
    else:
        kind = None
    if kind is None:
        raise ConfigError(
            f"{key} = {str(model_dir)!r}: model_type {model_type!r} is neither a transformer encoder nor a decoder "
            "language model (neurotext scans BERT-like encoders and GPT-2 / GPT-NeoX / Llama-style decoders); "
            "point it at such a model directory"
        )
    return kind


def check_is_encoder(model_dir: str | os.PathLike[str], key: str = "model.path") -> None:
    """Refuse a model directory that does not hold a transformer encoder, naming `key`."""
    if check_model_kind(model_dir, key) != "encoder":
        raise ConfigError(f"{key} = {str(model_dir)!r}: a decoder language model, not a transformer encoder")
