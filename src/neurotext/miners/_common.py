"""Parameter validation and small numba helpers shared by the miners."""

from __future__ import annotations

import math
import numbers

import numpy as np
from numba import njit


def check_int(name: str, value: object, minimum: int) -> int:
    """`value` as an int >= `minimum`, or a clear `ValueError` / `TypeError` (bools and floats are rejected)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_max_gap(max_gap: object) -> int:
    """Validated maximum gap: None (unbounded) becomes -1 for the kernels; otherwise an int >= 0."""
    if max_gap is None:
        return -1
    return check_int("max_gap", max_gap, 0)


def default_min_support(k: int, fraction: float = 0.01, floor: int = 3) -> int:
    """The default threshold for `k` top sentences: ``max(floor, ceil(fraction * k))``."""
    check_int("k", k, 0)
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    return max(check_int("floor", floor, 1), math.ceil(fraction * k))


@njit(cache=True)
def grow(a, need):  # pragma: no cover - compiled
    """`a` itself when it holds `need` entries, else a copy at least twice as large (prefix preserved)."""
    if need <= a.size:
        return a
    cap = max(need, 2 * a.size, 16)
    b = np.empty(cap, a.dtype)
    b[: a.size] = a
    return b


@njit(cache=True)
def gallop(arr, lo, hi, target):  # pragma: no cover - compiled
    """First index in ``[lo, hi)`` with ``arr[index] >= target`` (``arr`` sorted there), by exponential search."""
    if lo >= hi or arr[lo] >= target:
        return lo
    step = 1
    prev = lo
    cur = lo + 1
    while cur < hi and arr[cur] < target:
        prev = cur
        step *= 2
        cur = prev + step
    if cur > hi:
        cur = hi
    # arr[prev] < target, answer in (prev, cur]
    a = prev + 1
    b = cur
    while a < b:
        m = (a + b) // 2
        if arr[m] < target:
            a = m + 1
        else:
            b = m
    return a
