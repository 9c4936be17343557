"""Run a Hugging Face encoder over tokenized sentences and pool its neuron sites per sentence (shared ground).

Used by the scan (top K per neuron, sample activations) and by later stages (token records, fine-tuning).

* Tokenization: the model's fast tokenizer, special tokens added, character offsets kept, truncation at
  `max_length` (counted). Token ids of many sentences live in one flat `Tokens` record (no Python list per token).
* Batch plan: sentences sorted by (token length, sentence_id) and cut into batches of at most `token_budget` padded
  tokens (`plan_batches`), so the plan depends only on the sentences and the config.
* Neuron sites, captured with forward hooks and pooled as soon as each layer has run, so at most a couple of layers'
  [batch, tokens, width] activations exist at once: `hidden` = each layer's output (HF ``hidden_states[1..n]``),
  `ffn` = each layer's intermediate activation (after the activation function).
* Pooling over a sentence's tokens: `max` (also returns the argmax token index), `cls` (token 0), `mean`; with
  `exclude_special`, special tokens ([CLS], [SEP]) are left out of max and mean (a sentence with no other token falls
  back to all its tokens).
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

from neurotext.config import ConfigError

log = logging.getLogger("neurotext.encoder")

SITES = ("hidden", "ffn")
POOLINGS = ("max", "cls", "mean")
DEVICES = ("auto", "cpu", "cuda")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


# --------------------------------------------------------------------------------------------------------------
# Settings


@dataclass(frozen=True)
class ModelSettings:
    """The config's `model:` block, validated. max_length counts tokens including special tokens."""

    site: str = "hidden"
    pooling: str = "max"
    exclude_special: bool = True
    max_length: int = 128

    @classmethod
    def from_config(cls, model: Mapping[str, Any]) -> ModelSettings:
        site = model.get("site", "hidden")
        if site not in SITES:
            raise ConfigError(f"model.site = {site!r}: choose one of {', '.join(SITES)}")
        pooling = model.get("pooling", "max")
        check_pooling(pooling, "model.pooling")
        max_length = model.get("max_length", 128)
        if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 3:
            raise ConfigError(f"model.max_length = {max_length!r}: an integer >= 3 (tokens, special tokens included)")
        exclude_special = model.get("exclude_special", True)
        if not isinstance(exclude_special, bool):
            raise ConfigError(f"model.exclude_special = {exclude_special!r}: true or false")
        return cls(site=site, pooling=pooling, exclude_special=exclude_special, max_length=max_length)


@dataclass(frozen=True)
class ScanSettings:
    """The config's `scan:` block, validated. token_budget: padded tokens per batch; threads: torch intra-op."""

    k: int = 100
    token_budget: int = 8192
    device: str = "auto"
    dtype: str = "float32"
    threads: int = 2

    @classmethod
    def from_config(cls, scan: Mapping[str, Any]) -> ScanSettings:
        values = {
            name: scan.get(name, default) for name, default in (("k", 100), ("token_budget", 8192), ("threads", 2))
        }
        for name, value in values.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"scan.{name} = {value!r}: a positive integer")
        device = scan.get("device", "auto")
        if device not in DEVICES:
            raise ConfigError(f"scan.device = {device!r}: choose one of {', '.join(DEVICES)}")
        dtype = scan.get("dtype", "float32")
        if dtype not in DTYPES:
            raise ConfigError(f"scan.dtype = {dtype!r}: choose one of {', '.join(DTYPES)}")
        return cls(device=device, dtype=dtype, **values)


def check_pooling(pooling: str, key: str) -> None:
    """Raise ConfigError naming `key` when `pooling` is not max, cls or mean."""
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
        starts.append(spans[0::2])
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


def make_batch(tokens: Tokens, rows: np.ndarray, exclude_special: bool, device: torch.device) -> TokenBatch:
    """Pad the sentences `rows` of `tokens` to their longest length (pad id 0) and move them to `device`
    (pinned memory and asynchronous copies on CUDA)."""
    lengths = tokens.lengths[rows]
    width = int(lengths.max()) if len(rows) else 0
    positions = np.arange(width)[np.newaxis, :]
    real = positions < lengths[:, np.newaxis]
    flat_index = (tokens.offsets[rows][:, np.newaxis] + positions)[real]
    input_ids = np.zeros((len(rows), width), dtype=np.int64)
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
    [B, H] for max pooling (index into the sentence's tokens of the max), None for cls and mean."""

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
    raise ConfigError(f"model.pooling = {pooling!r}: choose one of {', '.join(POOLINGS)}")


# --------------------------------------------------------------------------------------------------------------
# The encoder


_LAYER_PATHS = ("encoder.layer", "transformer.layer")  # BERT family (BERT, RoBERTa, ELECTRA, ...), DistilBERT
_FFN_PATHS = ("intermediate", "ffn.activation")  # the module whose output is the activated intermediate


def _get_path(module: torch.nn.Module, path: str) -> Any:
    for part in path.split("."):
        module = getattr(module, part, None)
        if module is None:
            return None
    return module


class Encoder:
    """A loaded encoder that pools its neuron sites per sentence.

    Attributes: model (eval mode, on `device`), device, autocast_dtype (None = float32), site ('hidden' or 'ffn'),
    n_layers, n_neurons (per layer at the site). Layers are numbered 1..n_layers in results (index 0 here is layer 1).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        site: str = "hidden",
        device: torch.device | None = None,
        autocast_dtype: torch.dtype | None = None,
        key: str = "model.path",
    ) -> None:
        if site not in SITES:
            raise ConfigError(f"model.site = {site!r}: choose one of {', '.join(SITES)}")
        self.model = model.eval()
        self.device = device or next(model.parameters()).device
        self.autocast_dtype = autocast_dtype
        self.site = site
        layers = next((found for p in _LAYER_PATHS if (found := _get_path(model, p)) is not None), None)
        model_type = getattr(model.config, "model_type", "?")
        if layers is None or not isinstance(layers, torch.nn.ModuleList):
            raise ConfigError(
                f"{key}: the model (model_type {model_type!r}) has no encoder layer list neurotext knows "
                f"({' or '.join(_LAYER_PATHS)}); use a BERT-family encoder"
            )
        if site == "hidden":
            self.site_modules = list(layers)
            self.n_neurons = int(model.config.hidden_size)
        else:
            modules = [
                next((m for p in _FFN_PATHS if (m := _get_path(layer, p)) is not None), None) for layer in layers
            ]
            if any(m is None for m in modules):
                raise ConfigError(
                    f"model.site = 'ffn': the model (model_type {model_type!r}) has no intermediate module neurotext "
                    f"knows ({' or '.join(_FFN_PATHS)}); use model.site: hidden"
                )
            self.site_modules = modules
            config = model.config
            self.n_neurons = int(getattr(config, "intermediate_size", None) or getattr(config, "hidden_dim"))
        self.n_layers = len(self.site_modules)

    @classmethod
    def load(
        cls,
        model_dir: str | os.PathLike[str],
        site: str = "hidden",
        device: str = "auto",
        dtype: str = "float32",
        threads: int | None = None,
        key: str = "model.path",
    ) -> Encoder:
        """Load the encoder in `model_dir` (offline) on `device` ('auto', 'cpu', 'cuda') with the sdpa attention.

        `threads` sets torch's intra-op threads. Errors name `key` (the config key of the model path), site or
        device as needed: a directory that holds no encoder (a decoder, an encoder-decoder, no weights) is refused.
        """
        if site not in SITES:
            raise ConfigError(f"model.site = {site!r}: choose one of {', '.join(SITES)}")
        if threads:
            torch.set_num_threads(int(threads))
        torch_device = select_device(device)
        autocast_dtype = select_autocast_dtype(dtype, torch_device)
        check_is_encoder(model_dir, key)
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
            "encoder %s on %s (%s), site %s",
            Path(model_dir).name,
            torch_device,
            "float32" if autocast_dtype is None else str(autocast_dtype).replace("torch.", ""),
            site,
        )
        return cls(model, site=site, device=torch_device, autocast_dtype=autocast_dtype, key=key)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    def pool(self, batch: TokenBatch, poolings: Sequence[str]) -> dict[str, list[Pooled]]:
        """Run one batch; for each pooling, one `Pooled` per layer (index 0 = layer 1)."""
        for pooling in poolings:
            check_pooling(pooling, "model.pooling")
        results: dict[str, list[Pooled]] = {pooling: [] for pooling in poolings}

        def hook(_module: torch.nn.Module, _inputs: Any, output: Any) -> None:
            activations = output[0] if isinstance(output, tuple) else output
            for pooling in poolings:
                results[pooling].append(pool_activations(activations, batch.pool_mask, pooling))

        handles = [module.register_forward_hook(hook) for module in self.site_modules]
        try:
            with torch.inference_mode(), self._autocast():
                self.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
        finally:
            for handle in handles:
                handle.remove()
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


def check_is_encoder(model_dir: str | os.PathLike[str], key: str = "model.path") -> None:
    """Refuse a model directory that does not hold a transformer encoder, naming `key`.

    An encoder here is a model type with a masked-LM head in transformers (BERT, RoBERTa, DistilBERT, ELECTRA,
    DeBERTa, ...), not configured as a decoder or an encoder-decoder.
    """
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    try:
        config = AutoConfig.from_pretrained(str(model_dir), local_files_only=True)
    except (OSError, ValueError, KeyError) as error:
        raise ConfigError(f"{key} = {str(model_dir)!r}: cannot read the model config ({error})") from error
    model_type = getattr(config, "model_type", None)
    if (
        model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES
        or getattr(config, "is_decoder", False)
        or getattr(config, "is_encoder_decoder", False)
    ):
        raise ConfigError(
            f"{key} = {str(model_dir)!r}: model_type {model_type!r} is not a transformer encoder (neurotext scans "
            "BERT-like encoders: bert, roberta, distilbert, electra, ...); point it at an encoder model directory"
        )
