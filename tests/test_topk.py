"""The int64 top-K keys and their accumulators and merges, against brute-force oracles (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurotext.topk import INT64_MIN, TopK, activation_keys, decode_keys, merge_keys, merge_keys_with_payload

SPECIAL_FLOATS = [0.0, -0.0, 1.0, -1.0, math.inf, -math.inf, math.nan, 1e-45, -1e-45, 3.4e38, -3.4e38, 0.5, -0.5]
floats32 = st.one_of(
    st.sampled_from(SPECIAL_FLOATS),
    st.floats(width=32, allow_nan=True, allow_infinity=True),
)
MAX_ID = 2**32 - 1
ids32 = st.one_of(st.sampled_from([0, 1, MAX_ID - 1, MAX_ID]), st.integers(0, MAX_ID))


def oracle_order(values: list[float], ids: list[int]) -> list[int]:
    """Positions sorted by value descending (NaN lowest, -0.0 == +0.0), then id ascending: plain Python sort."""

    def sort_key(i: int):
        value = values[i]
        if math.isnan(value):
            return (1, 0.0, ids[i])
        return (0, -value, ids[i])

    return sorted(range(len(values)), key=sort_key)


def as_f32(values: list[float]) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)


@given(st.lists(st.tuples(floats32, ids32), min_size=1, max_size=60, unique_by=lambda t: t[1]))
def test_key_order_is_value_descending_then_id_ascending(pairs):
    values = as_f32([v for v, _ in pairs])
    ids = np.asarray([i for _, i in pairs], dtype=np.uint32)
    keys = activation_keys(values, ids)
    assert keys.dtype == np.int64
    assert len(set(keys.tolist())) == len(keys)  # unique: ids are unique
    by_keys = np.argsort(keys, kind="stable")[::-1].tolist()
    assert by_keys == oracle_order(values.astype(np.float64).tolist(), ids.tolist())


@given(st.lists(st.tuples(floats32, ids32), min_size=1, max_size=60))
def test_encode_decode_round_trip_and_torch_agrees_bit_for_bit(pairs):
    values = as_f32([v for v, _ in pairs])
    ids = np.asarray([i for _, i in pairs], dtype=np.uint32)
    keys = activation_keys(values, ids)
    torch_keys = activation_keys(torch.from_numpy(values.copy()), torch.from_numpy(ids.astype(np.int64)))
    assert isinstance(torch_keys, torch.Tensor) and torch_keys.dtype == torch.int64
    np.testing.assert_array_equal(torch_keys.numpy(), keys)
    decoded_ids, decoded_values = decode_keys(keys)
    np.testing.assert_array_equal(decoded_ids, ids)
    nan = np.isnan(values)
    np.testing.assert_array_equal(np.isnan(decoded_values), nan)
    expected = np.where(values == 0, np.float32(0.0), values)[~nan]  # -0.0 comes back as +0.0
    np.testing.assert_array_equal(decoded_values[~nan].view(np.int32), expected.view(np.int32))


def test_key_fixed_points():
    ids = np.array([7, 7, 7, 7, 0, MAX_ID], dtype=np.uint32)
    keys = activation_keys(as_f32([0.0, -0.0, math.nan, -math.inf, 1.0, math.nan]), ids)
    assert keys[0] == keys[1] == (MAX_ID - 7)  # +0.0 and -0.0: high half 0
    assert keys[2] >> 32 == -(2**31)  # NaN lowest
    assert keys[3] > keys[2]  # -inf above NaN
    assert keys[4] == (0x3F800000 << 32) | MAX_ID  # 1.0's bits, id 0
    assert keys[5] == INT64_MIN  # NaN with the largest id: the smallest key


def brute_force_top(values: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """[n_neurons, min(k, n)] ids and values of the top k by the oracle order, neuron by neuron."""
    n, n_neurons = values.shape
    width = min(k, n)
    top_ids = np.zeros((n_neurons, width), dtype=np.uint32)
    top_values = np.zeros((n_neurons, width), dtype=np.float32)
    for neuron in range(n_neurons):
        order = oracle_order(values[:, neuron].astype(np.float64).tolist(), ids.tolist())[:width]
        top_ids[neuron] = ids[order]
        top_values[neuron] = values[order, neuron]
    return top_ids, top_values


def assert_same_values(actual: np.ndarray, expected: np.ndarray) -> None:
    """Equal as float32, NaN == NaN and -0.0 == +0.0."""
    assert actual.shape == expected.shape
    both_nan = np.isnan(actual) & np.isnan(expected)
    assert ((actual == expected) | both_nan).all(), (actual, expected)


@st.composite
def scan_problems(draw):
    n_neurons = draw(st.integers(1, 4))
    n = draw(st.integers(0, 50))
    ids = draw(st.lists(ids32, min_size=n, max_size=n, unique=True))
    # A small value pool makes ties (same value, different ids) common.
    pool = draw(st.lists(floats32, min_size=1, max_size=6))
    values = draw(st.lists(st.sampled_from(pool), min_size=n * n_neurons, max_size=n * n_neurons))
    k = draw(st.integers(1, 12))
    n_shards = draw(st.integers(1, 4))
    shard_of = draw(st.lists(st.integers(0, n_shards - 1), min_size=n, max_size=n))
    batch_size = draw(st.integers(1, 9))
    slack = draw(st.integers(1, 6))
    merge_order = draw(st.permutations(range(n_shards)))
    return (
        as_f32(values).reshape(n, n_neurons),
        np.asarray(ids, dtype=np.uint32),
        k,
        np.asarray(shard_of, dtype=np.int64),
        n_shards,
        batch_size,
        slack,
        list(merge_order),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scan_problems(), st.sampled_from(["threshold", "topk"]))
def test_sharded_streaming_topk_and_merge_equal_brute_force(problem, strategy):
    values, ids, k, shard_of, n_shards, batch_size, slack, merge_order = problem
    n, n_neurons = values.shape
    payload = (np.arange(n * n_neurons, dtype=np.int32).reshape(n, n_neurons) % 30000).astype(np.int16)
    shard_keys, shard_payloads = [], []
    for shard in range(n_shards):
        rows = np.flatnonzero(shard_of == shard)
        accumulator = TopK(n_neurons, k, np.int16, device="cpu", strategy=strategy, slack=slack)
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            keys = activation_keys(values[batch], ids[batch][:, None])
            if strategy == "topk":  # the device path takes tensors
                accumulator.add(torch.from_numpy(keys), torch.from_numpy(payload[batch]))
            else:
                accumulator.add(keys, payload[batch])
        result = accumulator.result()
        assert result.keys.shape == (n_neurons, min(k, len(rows)))
        assert (result.keys[:, 1:] < result.keys[:, :-1]).all()  # strictly descending
        shard_keys.append(result.keys)
        shard_payloads.append(result.payload)

    merged = merge_keys([shard_keys[i] for i in merge_order], k)
    merged_again, merged_payload = merge_keys_with_payload(shard_keys[::-1], shard_payloads[::-1], k)
    np.testing.assert_array_equal(merged, merged_again)

    expected_ids, expected_values = brute_force_top(values, ids, k)
    decoded_ids, decoded_values = decode_keys(merged)
    np.testing.assert_array_equal(decoded_ids, expected_ids)
    assert_same_values(decoded_values, expected_values)
    # The payload followed its key: it is the payload of that (sentence, neuron).
    position = {int(sentence): row for row, sentence in enumerate(ids)}
    for neuron in range(n_neurons):
        rows = [position[int(s)] for s in decoded_ids[neuron]]
        np.testing.assert_array_equal(merged_payload[neuron], payload[rows, neuron])


@given(st.integers(1, 30), st.integers(1, 5), st.integers(0, 2**31))
def test_threshold_and_device_accumulators_agree_on_random_floats(k, n_neurons, seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 200))
    values = rng.standard_normal((n, n_neurons)).astype(np.float32)
    ids = rng.choice(2**32, size=n, replace=False).astype(np.uint32)
    tokens = rng.integers(0, 128, size=(n, n_neurons)).astype(np.int16)
    results = []
    for strategy in ("threshold", "topk"):
        accumulator = TopK(n_neurons, k, np.int16, strategy=strategy, slack=int(rng.integers(1, 40)))
        for start in range(0, n, 17):
            keys = activation_keys(
                torch.from_numpy(values[start : start + 17]),
                torch.from_numpy(ids[start : start + 17].astype(np.int64))[:, None],
            )
            accumulator.add(keys, torch.from_numpy(tokens[start : start + 17]))
        results.append(accumulator.result())
    np.testing.assert_array_equal(results[0].keys, results[1].keys)
    np.testing.assert_array_equal(results[0].payload, results[1].payload)
    assert results[0].keys.shape == (n_neurons, min(k, n))


def test_merge_keeps_all_when_k_exceeds_the_total():
    a = activation_keys(as_f32([[1.0], [2.0]]), np.array([[3], [4]], dtype=np.uint32))
    b = activation_keys(as_f32([[1.5]]), np.array([[9]], dtype=np.uint32))
    merged = merge_keys([a.T, b.T], 10)
    ids, values = decode_keys(merged)
    assert ids.tolist() == [[4, 9, 3]] and values.tolist() == [[2.0, 1.5, 1.0]]


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="k must be"):
        TopK(3, 0)
    with pytest.raises(ValueError, match="threshold strategy runs on the CPU"):
        TopK(3, 2, device="cuda", strategy="threshold")
    accumulator = TopK(3, 2)
    with pytest.raises(ValueError, match=r"\[batch, 3\]"):
        accumulator.add(np.zeros((2, 4), dtype=np.int64), np.zeros((2, 4), dtype=np.int16))
    with pytest.raises(ValueError, match="expected"):
        merge_keys([np.zeros((2, 3), dtype=np.int64), np.zeros((3, 3), dtype=np.int64)], 2)
