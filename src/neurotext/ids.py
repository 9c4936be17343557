"""Sentence identifiers and the deterministic hash used for sampling (docs/ARCHITECTURE.md, "Identifiers").

`sentence_id` is a uint32: ``dataset_code << 27 | row``. `dataset_code` (0-31) is fixed per dataset in config and
`row` is the sentence's index in its dataset after cleaning and dedupe, in document order.
"""

from __future__ import annotations

import numpy as np

ROW_BITS = 27
MAX_ROWS = 1 << ROW_BITS  # 134,217,728 sentences per dataset
MAX_DATASET_CODE = 31
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


class IdOverflowError(ValueError):
    """A dataset code or row does not fit the 5 + 27 bit sentence id."""


def make_sentence_ids(dataset_code: int, rows: np.ndarray, dataset: str = "?") -> np.ndarray:
    """Return uint32 sentence ids for `rows` (int array, 0-based) of the dataset with `dataset_code`."""
    if not 0 <= int(dataset_code) <= MAX_DATASET_CODE:
        raise IdOverflowError(
            f"datasets.{dataset}.code = {dataset_code}: a dataset code must be an integer in 0..{MAX_DATASET_CODE}"
        )
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size and (rows.min() < 0 or rows.max() >= MAX_ROWS):
        raise IdOverflowError(
            f"dataset {dataset!r} has {int(rows.max()) + 1:,} sentences, more than the {MAX_ROWS:,} a sentence id "
            "can address; split it into two datasets with different codes or lower corpus.max_sentences_per_dataset"
        )
    return ((np.uint32(dataset_code) << np.uint32(ROW_BITS)) | rows.astype(np.uint32)).astype(np.uint32)


def dataset_code_of(sentence_ids: np.ndarray) -> np.ndarray:
    """Dataset code (uint8) of each sentence id."""
    return (np.asarray(sentence_ids, dtype=np.uint32) >> np.uint32(ROW_BITS)).astype(np.uint8)


def row_of(sentence_ids: np.ndarray) -> np.ndarray:
    """Row within its dataset (uint32) of each sentence id."""
    return np.asarray(sentence_ids, dtype=np.uint32) & np.uint32(MAX_ROWS - 1)


def splitmix64(values: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser applied elementwise to uint64 values; returns uint64 (wrapping arithmetic)."""
    z = np.asarray(values, dtype=np.uint64).copy()
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return z & _MASK64


def sample_order(sentence_ids: np.ndarray, seed: int) -> np.ndarray:
    """The sampling score of each sentence: splitmix64(sentence_id ^ seed); the sample is the smallest scores."""
    ids = np.asarray(sentence_ids, dtype=np.uint64)
    return splitmix64(ids ^ np.uint64(seed))


def text_hash64(texts: list[str]) -> np.ndarray:
    """A stable 64-bit hash (uint64) of each text: the first 8 bytes of BLAKE2b over its UTF-8 bytes."""
    import hashlib

    out = np.empty(len(texts), dtype=np.uint64)
    for index, text in enumerate(texts):
        out[index] = int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")
    return out


def neuron_name(layer: int, neuron: int) -> str:
    """Global neuron name: layer 11 neuron 309 -> 'L11.309'."""
    return f"L{layer}.{neuron}"


def unit_marker(features: str = "neurons") -> str:
    """The letter between a unit name's dot and its index: '' for neurons, 'f' for features (directions or SAE
    latents, any `model.features` but neurons). The browser's pages build names from it."""
    return "" if features == "neurons" else "f"


def unit_name(layer: int, index: int, features: str = "neurons") -> str:
    """Name of a unit: a neuron 'L6.1234', a feature (direction or SAE latent, `model.features` not neurons)
    'L6.f1234'."""
    return f"L{layer}.{unit_marker(features)}{index}"


def parse_neuron_name(name: str) -> tuple[int, int]:
    """'L11.309' -> (11, 309), also a feature name 'L6.f1234' -> (6, 1234); raises ValueError naming the bad
    string."""
    try:
        layer_part, neuron_part = name.strip().split(".")
        if not layer_part.upper().startswith("L"):
            raise ValueError
        if neuron_part[:1] in ("f", "F"):
            neuron_part = neuron_part[1:]
        return int(layer_part[1:]), int(neuron_part)
    except ValueError:
        raise ValueError(f"{name!r} is not a neuron name; write it as L<layer>.<neuron>, e.g. L11.309") from None
