"""Top-K kernels over unique int64 keys (docs/ARCHITECTURE.md, "Scan and top K").

A key packs a sentence's activation for one neuron and its sentence id into one int64 whose integer order is
"activation descending, then sentence id ascending":

* high 32 bits: the order-preserving signed integer of the float32 activation (its bit pattern, with the low 31
  bits flipped when the sign bit is set); -0.0 is encoded as +0.0 and every NaN as the lowest value, -2**31;
* low 32 bits: ``2**32 - 1 - sentence_id`` (so the lower id wins a tie).

Keys of one neuron are unique (one per sentence), so its top K is a set that does not depend on shard order, batch
order or merge tree, and sorting it gives one order. Everything here works on numpy arrays and, where it says so,
on torch tensors too; both give the same bits.

Two streaming accumulators keep each neuron's running top K with a payload (the token index of the max):

* ``strategy="threshold"`` (CPU, numpy): each neuron's current K-th key is a threshold; only keys above it are
  appended to a per-neuron buffer, which is compacted with one vectorised ``argpartition`` when it fills up.
* ``strategy="topk"`` (any torch device, the GPU path): every key is appended on the device and the buffer is cut
  back to K with ``torch.topk`` over the int64 keys when it fills up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

try:  # torch is optional for the numpy kernels
    import torch
except ImportError:  # pragma: no cover - torch is a dependency of the scan
    torch = None  # type: ignore[assignment]

INT64_MIN = np.iinfo(np.int64).min
#: Encoded high half of every NaN: below -inf (whose high half is -2**31 + 0x7FFFFF).
NAN_HIGH = -(2**31)
_LOW_MASK = 0xFFFFFFFF
_FLIP = 0x7FFFFFFF


def _is_torch(value: Any) -> bool:
    return torch is not None and isinstance(value, torch.Tensor)


def activation_keys(values, sentence_ids):
    """Unique int64 keys of float32 activations.

    values: float array or tensor [..., n_neurons] or any shape broadcastable with `sentence_ids` (cast to float32
    first). sentence_ids: uint32-valued ids, broadcast against `values` (for [B, H] activations pass ids of shape
    [B, 1]). Returns int64 of the broadcast shape: a numpy array for numpy input, a tensor on the input's device for
    torch input. numpy and torch give identical bits.
    """
    if _is_torch(values):
        return _activation_keys_torch(values, sentence_ids)
    return _activation_keys_numpy(np.asarray(values), np.asarray(sentence_ids))


def _activation_keys_numpy(values: np.ndarray, sentence_ids: np.ndarray) -> np.ndarray:
    floats = values.astype(np.float32, copy=True)
    floats += np.float32(0.0)  # -0.0 + 0.0 == +0.0: one encoding for zero
    bits = floats.view(np.int32).astype(np.int64)
    high = np.where(bits < 0, bits ^ _FLIP, bits)
    high = np.where(np.isnan(floats), NAN_HIGH, high)
    low = _LOW_MASK - np.asarray(sentence_ids).astype(np.int64)
    return (high << 32) | low


def _activation_keys_torch(values, sentence_ids):
    floats = values.to(torch.float32) + 0.0  # a fresh tensor; -0.0 becomes +0.0
    bits = floats.view(torch.int32).to(torch.int64)
    high = torch.where(bits < 0, bits ^ _FLIP, bits)
    high = torch.where(torch.isnan(floats), torch.full_like(high, NAN_HIGH), high)
    if not _is_torch(sentence_ids):
        sentence_ids = torch.as_tensor(np.asarray(sentence_ids).astype(np.int64))
    low = _LOW_MASK - sentence_ids.to(device=floats.device, dtype=torch.int64)
    return (high << 32) | low


def decode_keys(keys) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of `activation_keys`: (sentence_ids uint32, activations float32), same shape as `keys`.

    -0.0 comes back as +0.0 and every NaN as one NaN; all other float32 values round-trip exactly.
    """
    keys = keys.detach().cpu().numpy() if _is_torch(keys) else np.asarray(keys)
    keys = keys.astype(np.int64, copy=False)
    high = keys >> 32  # arithmetic shift: the signed high half
    low = keys & _LOW_MASK
    sentence_ids = (_LOW_MASK - low).astype(np.uint32)
    bits = np.where(high < 0, high ^ _FLIP, high).astype(np.int64)
    activations = (bits & _LOW_MASK).astype(np.uint32).view(np.float32)
    activations = np.where(high == NAN_HIGH, np.float32(np.nan), activations).astype(np.float32)
    return sentence_ids, activations


def sort_descending(keys: np.ndarray, payload: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Sort each row of `keys` [n, m] descending; reorder `payload` [n, m] the same way."""
    order = np.argsort(keys, axis=1, kind="stable")[:, ::-1]
    sorted_keys = np.take_along_axis(keys, order, axis=1)
    sorted_payload = None if payload is None else np.take_along_axis(payload, order, axis=1)
    return sorted_keys, sorted_payload


def select_top(keys: np.ndarray, k: int, payload: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """The k largest keys of each row of `keys` [n, m], sorted descending ([n, min(k, m)]), with their payload."""
    if keys.ndim != 2:
        raise ValueError(f"keys must be 2-D [n_neurons, m], got shape {keys.shape}")
    width = keys.shape[1]
    if k < width:
        part = np.argpartition(keys, width - k, axis=1)[:, width - k :]
        keys = np.take_along_axis(keys, part, axis=1)
        payload = None if payload is None else np.take_along_axis(payload, part, axis=1)
    return sort_descending(keys, payload)


def merge_keys(key_arrays: Sequence[np.ndarray], k: int) -> np.ndarray:
    """Exact top k of each neuron over several [n_neurons, k_i] key arrays: [n_neurons, min(k, sum k_i)], sorted
    descending. The result does not depend on the order of `key_arrays`."""
    return merge_keys_with_payload(key_arrays, None, k)[0]


def merge_keys_with_payload(
    key_arrays: Sequence[np.ndarray], payload_arrays: Sequence[np.ndarray] | None, k: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """`merge_keys` that carries a payload array (same shapes as the key arrays) along with the keys.

    Folds the inputs one at a time into a running [n_neurons, <= 2k] buffer, so memory stays bounded by k whatever
    the number of inputs.
    """
    if not key_arrays:
        raise ValueError("merge_keys needs at least one key array")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    n_neurons = key_arrays[0].shape[0]
    with_payload = payload_arrays is not None
    if with_payload and len(payload_arrays) != len(key_arrays):
        raise ValueError("merge_keys: one payload array per key array")
    merged_keys = np.empty((n_neurons, 0), dtype=np.int64)
    merged_payload = np.empty((n_neurons, 0), dtype=payload_arrays[0].dtype) if with_payload else None
    for index, keys in enumerate(key_arrays):
        if keys.ndim != 2 or keys.shape[0] != n_neurons:
            raise ValueError(
                f"merge_keys: key array {index} has shape {keys.shape}, expected [{n_neurons}, k_i] like array 0"
            )
        merged_keys = np.concatenate([merged_keys, keys.astype(np.int64, copy=False)], axis=1)
        if with_payload:
            payload = payload_arrays[index]
            if payload.shape != keys.shape:
                raise ValueError(f"merge_keys: payload {index} has shape {payload.shape}, keys {keys.shape}")
            merged_payload = np.concatenate([merged_payload, payload.astype(merged_payload.dtype)], axis=1)
        if merged_keys.shape[1] > k:
            merged_keys, merged_payload = select_top(merged_keys, k, merged_payload)
    return sort_descending(merged_keys, merged_payload)


@dataclass
class TopKResult:
    """Each neuron's top K: keys [n_neurons, K'] int64 sorted descending, payload [n_neurons, K'];
    K' = min(k, sentences added)."""

    keys: np.ndarray
    payload: np.ndarray


class TopK:
    """Streaming exact top k per neuron over int64 keys, with a payload (e.g. the token index of the max).

    n_neurons: neurons (rows). k: kept per neuron. payload_dtype: numpy dtype of the payload.
    device: where the `topk` strategy keeps its buffers (a torch device or name); the `threshold` strategy is numpy
    on the CPU. strategy: 'threshold', 'topk' or 'auto' (threshold on the CPU, topk elsewhere).
    slack: extra buffer columns per neuron before a compaction (default: max(256, k // 4) for threshold,
    max(2k, 8192) for topk); memory is n_neurons x (k + slack) x (8 + payload bytes).

    `add(keys [B, n_neurons], payload [B, n_neurons])` takes numpy arrays or torch tensors (one row per sentence);
    `result()` returns a `TopKResult` (numpy, on the host).
    """

    def __init__(
        self,
        n_neurons: int,
        k: int,
        payload_dtype: Any = np.int16,
        device: Any = "cpu",
        strategy: str = "auto",
        slack: int | None = None,
    ) -> None:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        device_type = str(device).split(":")[0]
        if strategy == "auto":
            strategy = "threshold" if device_type == "cpu" else "topk"
        if strategy == "threshold":
            if device_type != "cpu":
                raise ValueError("the threshold strategy runs on the CPU; use strategy='topk' on a GPU")
            self._impl: _ThresholdTopK | _DeviceTopK = _ThresholdTopK(n_neurons, k, np.dtype(payload_dtype), slack)
        elif strategy == "topk":
            self._impl = _DeviceTopK(n_neurons, k, np.dtype(payload_dtype), device, slack)
        else:
            raise ValueError(f"TopK strategy {strategy!r}: choose 'auto', 'threshold' or 'topk'")
        self.strategy = strategy
        self.n_neurons = n_neurons
        self.k = k

    @property
    def n_added(self) -> int:
        """Sentences (rows) added so far."""
        return self._impl.n_added

    def add(self, keys, payload) -> None:
        """Add one batch: keys [B, n_neurons] int64 (from `activation_keys`), payload [B, n_neurons]."""
        if keys.shape[1:] != (self.n_neurons,) or tuple(payload.shape) != tuple(keys.shape):
            raise ValueError(
                f"TopK.add: keys {tuple(keys.shape)} and payload {tuple(payload.shape)} must both be "
                f"[batch, {self.n_neurons}]"
            )
        self._impl.add(keys, payload)

    def result(self) -> TopKResult:
        """Each neuron's top min(k, n_added) keys sorted descending, with payloads (numpy, host memory)."""
        return self._impl.result()


class _ThresholdTopK:
    """CPU accumulator: per-neuron thresholds, append-only buffers, vectorised compaction (no loop per neuron)."""

    def __init__(self, n_neurons: int, k: int, payload_dtype: np.dtype, slack: int | None) -> None:
        self.k = k
        self.slack = int(slack) if slack else max(256, k // 4)
        self.capacity = k + self.slack
        self.keys = np.full((n_neurons, self.capacity), INT64_MIN, dtype=np.int64)
        self.payload = np.zeros((n_neurons, self.capacity), dtype=payload_dtype)
        self.fill = np.zeros(n_neurons, dtype=np.int64)  # real entries per neuron, at columns [0, fill)
        self.threshold = np.full(n_neurons, INT64_MIN, dtype=np.int64)  # a lower bound of the current K-th key
        self.n_added = 0
        self.has_threshold = False

    def add(self, keys, payload) -> None:
        keys = _to_numpy(keys).astype(np.int64, copy=False)
        payload = _to_numpy(payload)
        # Chunks of at most `slack` rows always fit after a compaction (fill <= k).
        for start in range(0, keys.shape[0], self.slack):
            self._add_chunk(keys[start : start + self.slack], payload[start : start + self.slack])

    def _add_chunk(self, keys: np.ndarray, payload: np.ndarray) -> None:
        admitted = self._admitted(keys)
        counts = admitted.sum(axis=0)
        if int((self.fill + counts).max(initial=0)) > self.capacity:
            self._compact()
            admitted = self._admitted(keys)
            counts = admitted.sum(axis=0)
        rows, neurons = np.nonzero(admitted)
        if rows.size:
            columns = (self.fill[np.newaxis, :] + np.cumsum(admitted, axis=0, dtype=np.int64) - 1)[rows, neurons]
            self.keys[neurons, columns] = keys[rows, neurons]
            self.payload[neurons, columns] = payload[rows, neurons]
            self.fill += counts
        self.n_added += keys.shape[0]
        if not self.has_threshold and self.n_added >= self.k:
            self._compact()  # sets the first real thresholds

    def _admitted(self, keys: np.ndarray) -> np.ndarray:
        if not self.has_threshold:
            return np.ones(keys.shape, dtype=bool)  # fewer than k seen when the threshold was last set: keep all
        return keys > self.threshold[np.newaxis, :]

    def _compact(self) -> None:
        """Cut every neuron's buffer back to its top k (columns [0, k)) and refresh the thresholds."""
        k, capacity = self.k, self.capacity
        over = self.fill > k
        if over.any():
            # Rows over k hold > k unique real keys, so the k largest are all real (unused slots hold INT64_MIN,
            # which at most one real key can equal, and that key is then the row's unique minimum).
            top = np.argpartition(self.keys, capacity - k, axis=1)[:, capacity - k :]
            top = np.where(over[:, np.newaxis], top, np.arange(k)[np.newaxis, :])
            kept_keys = np.take_along_axis(self.keys, top, axis=1)
            kept_payload = np.take_along_axis(self.payload, top, axis=1)
            self.keys[:, :k] = kept_keys
            self.payload[:, :k] = kept_payload
            self.keys[:, k:] = INT64_MIN
            self.fill = np.minimum(self.fill, k)
        if self.n_added >= k:
            self.threshold = self.keys[:, :k].min(axis=1)
            self.has_threshold = True

    def result(self) -> TopKResult:
        self._compact()
        width = min(self.k, self.n_added)
        keys, payload = sort_descending(self.keys[:, :width].copy(), self.payload[:, :width].copy())
        return TopKResult(np.ascontiguousarray(keys), np.ascontiguousarray(payload))


_TORCH_DTYPES = {
    np.dtype(np.int16): "int16",
    np.dtype(np.int32): "int32",
    np.dtype(np.int64): "int64",
}


class _DeviceTopK:
    """Device accumulator: dense append of every key, `torch.topk` over int64 keys when the buffer is full."""

    def __init__(self, n_neurons: int, k: int, payload_dtype: np.dtype, device: Any, slack: int | None) -> None:
        if torch is None:  # pragma: no cover
            raise RuntimeError("the topk strategy needs torch")
        if payload_dtype not in _TORCH_DTYPES:
            raise ValueError(f"TopK payload dtype {payload_dtype} not supported on a device (int16/32/64)")
        self.k = k
        self.device = torch.device(device)
        self.payload_dtype = payload_dtype
        self.slack = int(slack) if slack else max(2 * k, 8192)
        self.capacity = k + self.slack
        self.keys = torch.empty((n_neurons, self.capacity), dtype=torch.int64, device=self.device)
        self.payload = torch.empty(
            (n_neurons, self.capacity), dtype=getattr(torch, _TORCH_DTYPES[payload_dtype]), device=self.device
        )
        self.fill = 0  # the same for every neuron: every key is appended
        self.n_added = 0

    def add(self, keys, payload) -> None:
        keys = torch.as_tensor(keys).to(self.device, non_blocking=True)
        payload = torch.as_tensor(payload).to(self.device, non_blocking=True)
        for start in range(0, keys.shape[0], self.slack):
            chunk_keys = keys[start : start + self.slack]
            rows = chunk_keys.shape[0]
            if self.fill + rows > self.capacity:
                self._compact()
            self.keys[:, self.fill : self.fill + rows] = chunk_keys.T
            self.payload[:, self.fill : self.fill + rows] = payload[start : start + self.slack].T
            self.fill += rows
            self.n_added += rows

    def _compact(self) -> None:
        if self.fill > self.k:
            kept_keys, index = torch.topk(self.keys[:, : self.fill], self.k, dim=1, largest=True, sorted=False)
            kept_payload = torch.gather(self.payload[:, : self.fill], 1, index)
            self.keys[:, : self.k] = kept_keys
            self.payload[:, : self.k] = kept_payload
            self.fill = self.k

    def result(self) -> TopKResult:
        self._compact()
        keys = self.keys[:, : self.fill]
        order = torch.argsort(keys, dim=1, descending=True, stable=True)
        sorted_keys = torch.gather(keys, 1, order).cpu().numpy()
        sorted_payload = torch.gather(self.payload[:, : self.fill], 1, order).cpu().numpy()
        return TopKResult(np.ascontiguousarray(sorted_keys), np.ascontiguousarray(sorted_payload))


def _to_numpy(value) -> np.ndarray:
    if _is_torch(value):
        return value.detach().cpu().numpy()
    return np.asarray(value)
