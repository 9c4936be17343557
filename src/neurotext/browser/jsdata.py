"""The page data as JavaScript: `js_assignment` (JSON safe inside any script element) and the number rounding that
keeps the data files small."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

#: First line of every data file: the object the assignments fill.
DATA_PRELUDE = "window.NEUROTEXT = window.NEUROTEXT || {layers: {}};\n"


def number(value: Any, digits: int = 4) -> float | None:
    """`value` with `digits` significant digits; None for None/NaN/inf (JSON has no NaN)."""
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        return None
    return float(f"{value:.{digits}g}")


def round_significant(values: Any, digits: int = 4) -> list[float | None]:
    """`number` over an array (float [n]), vectorized: x rounded half-even to `digits` significant digits, as the
    nearest float to that decimal (so JSON writes it short); None where not finite."""
    x = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(x)
    out = np.where(finite, x, 0.0)
    nonzero = out != 0
    exponent = np.zeros_like(out)
    exponent[nonzero] = np.floor(np.log10(np.abs(out[nonzero])))
    # Decimals to keep (negative: round to tens, hundreds, ...). Powers of ten up to 1e22 are exact doubles, so
    # the final division (or product) is one correctly rounded operation: the nearest double to the decimal.
    shift = np.clip(digits - 1 - exponent, -22, 22)
    exact = np.abs(digits - 1 - exponent) <= 22
    up = shift >= 0
    power = 10.0 ** np.abs(shift)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow only where not `exact`, redone below
        scaled = np.where(up, np.round(out * power) / power, np.round(out / power) * power)
    result = scaled.tolist()
    for i in np.flatnonzero(finite & ~exact):  # beyond 1e+-22 of rounding unit: the scalar route
        result[i] = float(f"{out[i]:.{digits}g}")
    return [r if f else None for r, f in zip(result, finite.tolist(), strict=True)]


def js_assignment(target: str, value: Any) -> str:
    """``{target} = {value as JSON};`` safe inside any script: no raw ``<``, ``>``, ``&``, U+2028 or U+2029 (all
    written as \\u escapes inside JSON strings, where alone they occur), no NaN (JSON has none: pass None)."""
    payload = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                         ("\u2029", "\\u2029")):  # fmt: skip
        payload = payload.replace(raw, escaped)
    return f"{target} = {payload};\n"
