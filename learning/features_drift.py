"""Feature drift: a two-sample Kolmogorov-Smirnov test per feature, recent window vs the training reference.

Every ``every`` vectors, once ``window`` recent vectors are held, each monitored feature's recent values are
compared with the training sample: the two-sample KS statistic ``D`` and its p-value from the asymptotic
Kolmogorov distribution (:func:`ks_two_sample`; ``scipy.stats.ks_2samp(method="asymp")`` gives the same
``D``, and p-values that differ only far from any decision here, at a tenth of the cost per check:
it re-sorts the reference every call and evaluates the exact finite-n distribution). The p-values
are corrected for testing many features at once with Holm's step-down method (it controls the family-wise
error like Bonferroni and is never less powerful).

Why an effect-size floor and a share of features on top of significance: with 500 vs 1,000 values a KS
test flags differences too small to matter, and real markets change volatility all the time. Measured on
the real candles (docs/learning.md), 15-22 of 25 features are "significant" in most windows while the
model's accuracy is unchanged; requiring ``D >= min_statistic`` (0.3) on at least ``min_fraction`` (half)
of the features fired in none of them, and still fires at once on a broken feed (e.g. rescaled inputs).

Only scale-free features are monitored (:data:`DRIFT_FEATURES`): prices, volumes, OBV, ATR and MACD are
in price units and drift with the price level by construction.

>>> import numpy as np
>>> from features import FEATURE_NAMES
>>> rng = np.random.default_rng(0)
>>> ref = rng.normal(size=(1000, len(FEATURE_NAMES)))
>>> fd = FeatureDrift(ref, window=200, every=100)
>>> [fd.update(v) for v in rng.normal(size=(400, len(FEATURE_NAMES)))].count(None)
400
>>> hit = [e for e in (fd.update(v) for v in rng.normal(3.0, 1.0, size=(200, len(FEATURE_NAMES)))) if e][0]
>>> hit["drifted"] == hit["tested"] == len(DRIFT_FEATURES), hit["max_statistic"] > 0.4
(True, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.special import kolmogorov

from features import FEATURE_NAMES

__all__ = ["DRIFT_FEATURES", "FeatureDrift", "holm_reject", "ks_two_sample", "reference_cdf"]

DRIFT_FEATURES: tuple[str, ...] = (
    "log_return_1", "log_return_5", "log_return_15", "volatility_5", "volatility_15", "volatility_30",
    "sma_5_norm", "sma_15_norm", "sma_30_norm", "ema_5_norm", "ema_15_norm", "ema_30_norm", "rsi_14",
    "volume_sma_ratio", "vwap_deviation", "price_position", "bb_percent_b", "bb_width", "stoch_k", "stoch_d",
    "adx_14", "mfi_14", "cci_20", "willr_14", "roc_10", "taker_buy_ratio",
)


def reference_cdf(reference_sorted: np.ndarray) -> np.ndarray:
    """The reference's empirical CDF at its own values (what every test against it reuses)."""
    return np.searchsorted(reference_sorted, reference_sorted, "right") / len(reference_sorted)


def ks_two_sample(reference_sorted: np.ndarray, sample: np.ndarray, cdf: np.ndarray | None = None
                  ) -> tuple[float, float]:
    """(D, asymptotic p-value) of the two-sample KS test; ``reference_sorted`` sorted ascending, no NaN;
    ``cdf``: :func:`reference_cdf` of it, when the caller keeps it.

    D is the largest gap between the two empirical CDFs over every point of either sample: at the
    reference's points (its own CDF given) and at the sample's.

    >>> rng = np.random.default_rng(1)
    >>> a, b = np.sort(rng.normal(size=1000)), rng.normal(0.5, 1.0, size=500)
    >>> d, p = ks_two_sample(a, b)
    >>> from scipy.stats import ks_2samp
    >>> bool(np.isclose(d, ks_2samp(a, b).statistic)), p < 1e-6, ks_two_sample(a, b, reference_cdf(a)) == (d, p)
    (True, True, True)
    """
    b = np.sort(sample)
    n, m = len(reference_sorted), len(b)
    at_reference = np.abs((cdf if cdf is not None else reference_cdf(reference_sorted))
                          - np.searchsorted(b, reference_sorted, "right") / m)
    at_sample = np.abs(np.searchsorted(reference_sorted, b, "right") / n - np.searchsorted(b, b, "right") / m)
    d = float(max(at_reference.max(), at_sample.max()))
    return d, float(kolmogorov(np.sqrt(n * m / (n + m)) * d))


def holm_reject(p_values: Sequence[float], alpha: float) -> np.ndarray:
    """Holm-Bonferroni: which hypotheses are rejected at family-wise level ``alpha``.

    >>> holm_reject([0.01, 0.04, 0.03, 0.5], alpha=0.05).tolist()
    [True, False, False, False]
    """
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    thresholds = alpha / (len(p) - np.arange(len(p)))
    passed = p[order] <= thresholds
    # Step-down: stop at the first hypothesis that is not rejected.
    n_reject = len(p) if passed.all() else int(np.argmin(passed))
    reject = np.zeros(len(p), dtype=bool)
    reject[order[:n_reject]] = True
    return reject


class FeatureDrift:
    """KS per monitored feature, recent ``window`` vectors vs ``reference`` (rows in FEATURE_NAMES order)."""

    def __init__(self, reference: np.ndarray, window: int = 500, every: int = 250, alpha: float = 0.01,
                 min_statistic: float = 0.3, min_fraction: float = 0.5, max_reference: int = 1000,
                 features: Sequence[str] = DRIFT_FEATURES, seed: int = 0) -> None:
        self.max_reference, self.seed = max_reference, seed
        self.columns = [FEATURE_NAMES.index(f) for f in features]
        self._columns = np.array(self.columns, dtype=np.intp)  # one fancy index per vector, no list to convert
        self.names = tuple(features)
        self.reference: list[np.ndarray] | None = None
        self.attach(reference)
        self.window, self.every, self.alpha = window, every, alpha
        self.min_statistic, self.min_fraction = min_statistic, min_fraction
        self.reset()

    def reset(self) -> None:
        # A ring of the last ``window`` vectors (the test does not depend on their order): one array to
        # persist, not one per vector.
        # float32, like the features the model reads: half the bytes in every checkpoint of the learner
        self._recent = np.full((self.window, len(self.columns)), np.nan, dtype=np.float32)
        self._filled = 0
        self._since_check = 0
        self._checked_at: int | None = None

    def update(self, features: Sequence[float], at: int | None = None) -> dict[str, Any] | None:
        """Add one vector; evidence when a test runs now and finds drift, else None. ``at``: the time the
        vector belongs to (its label candle's close): a test runs at most once per time, the next one at a
        later time than the last test's.
        The outcomes of one close of many symbols arrive together (2,000 symbols: eight tests of ``every``
        250 within the same close, each ~2.5 ms); testing again before the close is over adds no new
        market to the window, only more of the same close."""
        self._recent[self._filled % self.window] = np.asarray(features, dtype=np.float64)[self._columns]  # stored as float32
        self._filled += 1
        self._since_check += 1
        if self._filled < self.window or self._since_check < self.every or self.reference is None:
            return None
        if at is not None and self._checked_at is not None and at <= self._checked_at:
            return None  # tested at this time already: the next test waits for the next close
        self._since_check, self._checked_at = 0, at
        return self.check()

    def _sample(self, reference: np.ndarray) -> np.ndarray:
        ref = np.asarray(reference, dtype=np.float64)
        if ref.ndim != 2 or ref.shape[1] != len(FEATURE_NAMES):
            raise ValueError(f"reference must be (rows, {len(FEATURE_NAMES)}), got {ref.shape}")
        if len(ref) > self.max_reference:  # bounded: an even random subsample keeps the distribution
            ref = ref[np.sort(np.random.default_rng(self.seed).choice(len(ref), self.max_reference, replace=False))]
        return ref

    def attach(self, reference: np.ndarray) -> None:
        """Per feature, the reference without NaN (a feature the training feed never had is not tested).
        Given again after a restore: it is not part of the persisted state, the model has it."""
        ref = self._sample(reference)
        self.reference = [np.sort(ref[:, c][np.isfinite(ref[:, c])]) for c in self.columns]
        self._reference_cdf = [reference_cdf(r) if len(r) else r for r in self.reference]

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("_reference_cdf", None)  # given again by attach(), as the reference is
        self.__dict__.setdefault("_checked_at", None)  # states pickled before a test ran once per time
        self._columns = np.array(self.columns, dtype=np.intp)  # states pickled before it existed

    def __getstate__(self) -> dict[str, Any]:
        # The reference belongs to the model (models/profile.py) and is ~200 KB: persisted state stays small.
        return {**self.__dict__, "reference": None, "_reference_cdf": None}

    def check(self) -> dict[str, Any] | None:
        """Run the tests on the current window; evidence if enough features drifted, else None."""
        if self.reference is None:
            return None
        recent = (self._recent if self._filled >= self.window else self._recent[:self._filled]).astype(np.float64)
        names, stats, pvals = [], [], []
        for j, name in enumerate(self.names):
            now = recent[:, j][np.isfinite(recent[:, j])]
            if len(self.reference[j]) < 30 or len(now) < 30:
                continue  # a feature this feed lacks (NaN), or too few values to test
            d, p = ks_two_sample(self.reference[j], now, self._reference_cdf[j])
            names.append(name), stats.append(d), pvals.append(p)
        if not names:
            return None
        stats_a = np.array(stats)
        drifted = holm_reject(pvals, self.alpha) & (stats_a >= self.min_statistic)
        if drifted.sum() < self.min_fraction * len(names):
            return None
        top = np.argsort(-stats_a)[:5]
        return {"tested": len(names), "drifted": int(drifted.sum()), "max_statistic": float(stats_a.max()),
                "top": {names[i]: {"statistic": stats[i], "p_value": pvals[i]} for i in top},
                "alpha": self.alpha, "min_statistic": self.min_statistic, "window": self.window}
