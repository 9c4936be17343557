"""Scoring kernel shared by the pattern and metadata profiles (docs/ARCHITECTURE.md, "Pattern mining"): how
characteristic a pattern found in ``a`` of a neuron's ``K`` top sentences is, given that it is found in ``b`` of
``N`` background sentences.

Every function is vectorised over patterns: ``a``, ``K``, ``b``, ``N`` are integer arrays (or scalars) of one shape,
with ``0 <= a <= K`` and ``0 <= b <= N``. The two groups must be *disjoint*: the stage passes as background the
sample minus the neuron's own top sentences (a top sentence that happens to be in the sample counts once, in the
top group), so the 2 x 2 table [[a, K - a], [b, N - b]] counts each sentence once.

Formulas (pi, alpha, beta, delta, sigma are per pattern):

* Log-odds with an informative Dirichlet prior (Monroe, Colaresi & Quinn 2008, "Fightin' words", section 3.5), in
  its per-sentence (Bernoulli) form: a pattern is present or absent in each sentence, and the prior puts
  ``alpha0`` pseudo-sentences at the pattern's pooled rate into *both* groups::

      pi0   = (a + b + 1) / (K + N + 2)      (pooled rate over top K and background, Laplace-smoothed)
      alpha0 = prior_weight * (K + N)        (prior size: as many pseudo-sentences as real ones by default)
      alpha = alpha0 * pi0                   (prior "present" count, alpha_w of Monroe et al.)
      beta  = alpha0 * (1 - pi0)             (prior "absent" count)
      delta = log((a + alpha) / (K - a + beta)) - log((b + alpha) / (N - b + beta))
      sigma^2 = 1/(a + alpha) + 1/(K - a + beta) + 1/(b + alpha) + 1/(N - b + beta)
      z = delta / sigma

  Monroe et al. take the prior rate from the whole corpus (here the pooled counts) and drop the two "absent"
  variance terms because a word is rare among all tokens; a pattern can be in most of the K top sentences, so they
  are kept. Why this prior and not a weak one at the background rate ``(b + 1) / (N + 2)``: the Wald z of a log-odds
  is not monotone near zero counts (Hauck-Donner effect). With a weak prior (alpha0 = 10) a pattern in 50 of 100 top
  sentences and 0 of 2,000 background sentences gets z = 0.9 while the same pattern seen 10 times in the background
  gets z = 13.8, so ranking by z would bury exactly the most specific patterns. With a prior as large as the data
  (``prior_weight`` = 1; config ``patterns.prior_weight``) z increases with a and decreases with b over every
  (a, b) grid we checked for (K, N) from (30, 2,000) to (10,000, 10,000) (`tests/test_scoring.py` checks it), at the
  price of shrinking mild effects towards 0 (30 % vs 20 % gives z = 0.6 with K = 100, N = 2,000); whether an effect
  is real is the job of p and q, z only ranks.

* Lift, the top-K rate over the Laplace-smoothed background rate (finite even when b = 0)::

      lift = (a / K) / ((b + 1) / (N + 2))            (0 when K = 0)

* One-sided Fisher exact p (over-representation in the top K): with ``M = K + N`` sentences of which ``T = a + b``
  contain the pattern, the count in the top K is hypergeometric, ``A ~ Hypergeom(M, T, K)``, and
  ``p = P(A >= a)``. It equals ``scipy.stats.fisher_exact([[a, K - a], [b, N - b]], alternative="greater")``.

* Selection-adjusted ("selective") Fisher p: candidates are only those mined with ``a >= s`` (the minimum
  support), so rare patterns, whose few occurrences all fell in the top K by chance, reach the table *because* their
  p is small; a Benjamini-Hochberg correction over the mined candidates alone then finds false patterns in a random
  top K (real text, 60 random top-100 sets against a 2,000-sentence sample: 27 sets with "significant" patterns,
  432 in all, with the plain p; 2 sets with one each with the selective p; benchmarks/README.md, Patterns). Conditioning on the selection event restores a valid p under the null (Fithian, Sun & Taylor 2014,
  "Optimal inference after model selection")::

      p_sel = P(A >= a) / P(A >= s)        (a >= s; = p when s <= 1 or T is large)

  A pattern in 3 of 3 sentences, all in the top K, gets p_sel = 1; the planted pattern in 60 of 100 top sentences
  against 20 of 2000 keeps p_sel = p (P(A >= 3) = 1 to machine precision). It is the default
  (``patterns.p_value: selective``); ``plain`` gives the textbook p.

* Benjamini-Hochberg q over one family of m tests, p sorted ascending ``p_(1) <= ... <= p_(m)``::

      q_(i) = min_{j >= i} min(1, m * p_(j) / j)

  The stage uses one family per neuron for its word / skip-gram / POS-gram / subtree candidates together, and one
  per neuron for its metadata values.
"""

from __future__ import annotations

from dataclasses import dataclass

import math

import numpy as np
from numba import njit

__all__ = [
    "DEFAULT_PRIOR_WEIGHT",
    "P_VALUE_KINDS",
    "Scores",
    "bh_qvalues",
    "fisher_greater",
    "lift",
    "log_odds_z",
    "score_counts",
    "selective_fisher_greater",
    "smoothed_rate",
]

DEFAULT_PRIOR_WEIGHT = 1.0
P_VALUE_KINDS = ("selective", "plain")


@dataclass(frozen=True)
class Scores:
    """Scores of m patterns, float64 arrays of shape ``[m]`` (see the module docstring for the formulas)."""

    z: np.ndarray  # log-odds z-score with the informative Dirichlet prior
    delta: np.ndarray  # the log-odds difference itself (natural log)
    lift: np.ndarray  # top-K rate / smoothed background rate
    p: np.ndarray  # one-sided Fisher p (selective or plain, as asked)
    q: np.ndarray  # Benjamini-Hochberg q over the m patterns


def _as_counts(a, k, b, n) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Broadcast the four counts to float64 arrays of one shape and check 0 <= a <= K, 0 <= b <= N."""
    arrays = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in (a, k, b, n)))
    a, k, b, n = (np.array(x, dtype=np.float64) for x in arrays)
    if np.any(~np.isfinite(a + k + b + n)):
        raise ValueError("counts must be finite")
    if np.any((a < 0) | (a > k)):
        raise ValueError("need 0 <= a <= K for every pattern (a = support in the top K)")
    if np.any((b < 0) | (b > n)):
        raise ValueError("need 0 <= b <= N for every pattern (b = support in the background)")
    return a, k, b, n


def smoothed_rate(b, n) -> np.ndarray:
    """Laplace-smoothed background rate ``(b + 1) / (N + 2)``, in (0, 1)."""
    return (np.asarray(b, dtype=np.float64) + 1.0) / (np.asarray(n, dtype=np.float64) + 2.0)


def log_odds_z(a, k, b, n, prior_weight: float = DEFAULT_PRIOR_WEIGHT) -> tuple[np.ndarray, np.ndarray]:
    """``(delta, z)``: log-odds difference (top K vs background) and its z-score, informative Dirichlet prior.

    The prior holds ``alpha0 = prior_weight * (K + N)`` pseudo-sentences at the pooled rate (module docstring).
    """
    if not prior_weight > 0:
        raise ValueError(f"prior_weight must be > 0, got {prior_weight}")
    a, k, b, n = _as_counts(a, k, b, n)
    pi0 = (a + b + 1.0) / (k + n + 2.0)
    alpha0 = prior_weight * (k + n)
    alpha = alpha0 * pi0
    beta = alpha0 * (1.0 - pi0)
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = np.log((a + alpha) / (k - a + beta)) - np.log((b + alpha) / (n - b + beta))
        variance = 1.0 / (a + alpha) + 1.0 / (k - a + beta) + 1.0 / (b + alpha) + 1.0 / (n - b + beta)
        z = delta / np.sqrt(variance)
    empty = (k == 0) | (n == 0)  # no evidence from one side: no contrast
    return np.where(empty, 0.0, delta), np.where(empty, 0.0, z)


def lift(a, k, b, n) -> np.ndarray:
    """``(a / K) / ((b + 1) / (N + 2))``; 0 where K = 0."""
    a, k, b, n = _as_counts(a, k, b, n)
    rate_top = np.divide(a, k, out=np.zeros_like(a), where=k > 0)
    return rate_top / smoothed_rate(b, n)


@njit(cache=True)
def _log_choose(n, k):  # pragma: no cover - compiled
    return math.lgamma(n + 1.0) - math.lgamma(k + 1.0) - math.lgamma(n - k + 1.0)


@njit(cache=True)
def _log_hypergeom_sf(a, population, successes, draws):  # pragma: no cover - compiled
    """``log P(A >= a)`` for ``A ~ Hypergeom(population, successes, draws)``, exact to a few ulps in the log.

    Sums the pmf from `a` upwards when `a` is above the mode (terms fall geometrically), else sums the cdf below `a`
    downwards and takes ``log1p(-cdf)`` (then ``P(A >= a) >= P(A = mode)`` is not tiny). Stops when a term falls
    below 1e-17 of the sum. Integer arguments as float64.
    """
    lo = max(0.0, draws + successes - population)
    hi = min(successes, draws)
    if a <= lo:
        return 0.0
    if a > hi:
        return -np.inf
    rest = population - successes - draws
    mode = math.floor((draws + 1.0) * (successes + 1.0) / (population + 2.0))
    start = a if a > mode else a - 1.0
    log_first = (_log_choose(successes, start) + _log_choose(population - successes, draws - start)
                 - _log_choose(population, draws))
    total = 1.0
    term = 1.0
    x = start
    if a > mode:
        while x < hi:
            term *= (successes - x) * (draws - x) / ((x + 1.0) * (rest + x + 1.0))
            total += term
            if term < total * 1e-17:
                break
            x += 1.0
        return log_first + math.log(total)
    while x > lo:
        term *= x * (rest + x) / ((successes - x + 1.0) * (draws - x + 1.0))
        total += term
        if term < total * 1e-17:
            break
        x -= 1.0
    cdf = math.exp(log_first) * total
    return math.log1p(-cdf) if cdf < 1.0 else -np.inf


@njit(cache=True)
def _log_tails(threshold, population, successes, draws):  # pragma: no cover - compiled
    out = np.empty(threshold.size, np.float64)
    for i in range(threshold.size):
        out[i] = _log_hypergeom_sf(threshold[i], population[i], successes[i], draws[i])
    return out


def _log_tail(a: np.ndarray, k: np.ndarray, b: np.ndarray, n: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    """``log P(A >= threshold)`` for ``A ~ Hypergeom(M = K + N, T = a + b, draws = K)`` (0 where threshold <= 0)."""
    shape = a.shape
    flat = [np.ascontiguousarray(x, dtype=np.float64).reshape(-1) for x in (threshold, k + n, a + b, k)]
    return _log_tails(*flat).reshape(shape)


def fisher_greater(a, k, b, n) -> np.ndarray:
    """One-sided Fisher exact p of over-representation in the top K: ``P(A >= a)`` (module docstring)."""
    a, k, b, n = _as_counts(a, k, b, n)
    return np.minimum(1.0, np.exp(_log_tail(a, k, b, n, a)))


def selective_fisher_greater(a, k, b, n, min_support) -> np.ndarray:
    """``P(A >= a) / P(A >= s)``: the one-sided Fisher p given that the pattern was mined (``a >= s``).

    `min_support` ``s`` is a scalar or an array like `a`; every ``a`` must be >= ``s``. Where ``P(A >= s)``
    underflows to 0 (astronomically rare selection), p is 1 (no evidence either way is claimed).
    """
    a, k, b, n = _as_counts(a, k, b, n)
    s = np.broadcast_to(np.asarray(min_support, dtype=np.float64), a.shape)
    if np.any(a < s):
        raise ValueError("selective p needs a >= min_support for every pattern (only mined patterns are tested)")
    log_p = _log_tail(a, k, b, n, a)
    log_sel = _log_tail(a, k, b, n, s)
    with np.errstate(invalid="ignore"):
        ratio = np.exp(log_p - log_sel)
    ratio = np.where(np.isfinite(log_sel), ratio, 1.0)
    return np.clip(np.nan_to_num(ratio, nan=1.0), 0.0, 1.0)


def bh_qvalues(p) -> np.ndarray:
    """Benjamini-Hochberg q-values of the p-values `p` (any shape, one family), same shape, in [0, 1]."""
    p = np.asarray(p, dtype=np.float64)
    flat = p.reshape(-1)
    m = flat.size
    if m == 0:
        return p.copy()
    if np.any(np.isnan(flat)) or np.any((flat < 0) | (flat > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    order = np.argsort(flat, kind="stable")
    scaled = flat[order] * m / np.arange(1, m + 1)
    q_sorted = np.minimum.accumulate(scaled[::-1])[::-1]
    q = np.empty(m, dtype=np.float64)
    q[order] = np.minimum(q_sorted, 1.0)
    return q.reshape(p.shape)


def score_counts(
    a,
    k,
    b,
    n,
    *,
    prior_weight: float = DEFAULT_PRIOR_WEIGHT,
    min_support=1,
    p_value: str = "selective",
) -> Scores:
    """z, delta, lift, p and BH q of m patterns forming one family (``a``, ``K``, ``b``, ``N``: shape ``[m]``).

    `min_support` (scalar or ``[m]``) is the mining threshold each pattern passed; it only enters the selective p.
    `p_value` is ``selective`` (default) or ``plain`` (module docstring).
    """
    if p_value not in P_VALUE_KINDS:
        raise ValueError(f"p_value must be one of {P_VALUE_KINDS}, got {p_value!r}")
    delta, z = log_odds_z(a, k, b, n, prior_weight)
    if p_value == "selective":
        p = selective_fisher_greater(a, k, b, n, min_support)
    else:
        p = fisher_greater(a, k, b, n)
    return Scores(z=np.atleast_1d(z), delta=np.atleast_1d(delta), lift=np.atleast_1d(lift(a, k, b, n)),
                  p=np.atleast_1d(p), q=np.atleast_1d(bh_qvalues(p)))  # fmt: skip
