"""Float32 policy arithmetic with the same bits on every CPU, BLAS build and thread count.

Each function returns the float32 rounding of a value computed in float64 (or exactly), so the
result depends only on its inputs, never on the BLAS kernel, summation order, thread split or
SIMD routine the machine picks. A fast float64 result `y` is used when every value within a
proven error bound `B` of it rounds to the same float32 (rounding is monotone, so it suffices
that `y - B` and `y + B` do); the rare elements that sit within `B` of a float32 rounding
boundary are recomputed exactly (`math.fsum`, `decimal`), which no machine can do differently.
docs/datasets.md ("Bit-identical rebuilds") gives the reasoning and the measurements.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal, localcontext

import numpy as np

UNIT_ROUNDOFF = 2.0**-53
TRANSCENDENTAL_REL_BOUND = 2.0**-40
"""Relative error allowed to a float64 exp / tanh (about 8,000 float64 ulps: any libm or SIMD
routine is far closer); a tighter bound would only change how often the exact path runs."""
TINY = 1e-300
"""Absolute slack for results near 0 (covers flushed subnormals)."""


def _round_or_flag(y: np.ndarray, bound: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(float32 of y, mask of elements whose float32 rounding `bound` could change)."""
    lo, hi = (y - bound).astype(np.float32), (y + bound).astype(np.float32)
    return lo, lo != hi


def affine(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """float32(x @ w + b) for float32 inputs, rounded from the exact sum.

    Every product of two float32 numbers is exact in float64, so the float64 result of any
    summation order is within (n + 1) u sum|x_i w_i| + |b| of the exact value (u = 2^-53, n
    the fan-in; with FMA too); the bound below doubles that. Flagged elements are recomputed as
    the correctly rounded float64 sum of the exact products (`math.fsum`), then rounded.
    """
    x64, w64, b64 = (np.asarray(a, np.float32).astype(np.float64) for a in (x, w, b))
    z = x64 @ w64 + b64
    scale = np.abs(x64) @ np.abs(w64) + np.abs(b64)
    out, flagged = _round_or_flag(z, 2.0 * (w64.shape[0] + 2) * UNIT_ROUNDOFF * scale + TINY)
    for i, j in zip(*np.nonzero(flagged)):
        out[i, j] = math.fsum([*(x64[i] * w64[:, j]).tolist(), float(b64[j])])
    return out


def _exp_decimal(x: float) -> float:
    with localcontext() as ctx:
        ctx.prec = 50
        return float(Decimal(x).exp())


def _tanh_decimal(x: float) -> float:
    with localcontext() as ctx:
        ctx.prec = 50
        e = (2 * Decimal(x)).exp()
        return float((e - 1) / (e + 1))


def _elementwise(x: np.ndarray, fast: Callable[[np.ndarray], np.ndarray],
                 exact: Callable[[float], float]) -> np.ndarray:
    x64 = np.asarray(x, np.float32).astype(np.float64)
    y = fast(x64)
    out, flagged = _round_or_flag(y, np.abs(y) * TRANSCENDENTAL_REL_BOUND + TINY)
    for idx in zip(*np.nonzero(flagged)):
        out[idx] = exact(float(x64[idx]))
    return out


def exp(x: np.ndarray) -> np.ndarray:
    """float32(exp(x)) of a float32 array, the same on every machine."""
    return _elementwise(x, np.exp, _exp_decimal)


def tanh(x: np.ndarray) -> np.ndarray:
    """float32(tanh(x)) of a float32 array, the same on every machine."""
    return _elementwise(x, np.tanh, _tanh_decimal)
