"""Which series of a batch the series book folds on their own, and which in the feature bank's rounds.

The bank folds a round (the next candle of every series of a timeframe) with numpy operations over all its
symbols at once: a round costs about the same for 1 series as for 64 (~400 us of fixed numpy calls, then
~3 us a series). A series folded on its own leaves the bank as a scalar ``FeatureState``, takes its
candles one by one (~24 us each) and goes back (~140 us for the round trip). So a batch of many series
goes through rounds, while a few series with several candles each (a take of two symbols at 1,000
candles/s, a backfill) are cheaper alone. :func:`alone_above` picks the depth above which a series goes
alone by those costs (measured 2026-12-07, BENCHMARKS.md "Features"); the features are the same either way
(bit-identical: ``tests/streams/test_series_book.py``), only the time differs.

>>> alone_above([1] * 2000)      # a close of 2,000 symbols: one round
1
>>> alone_above([7, 7])          # two symbols, seven candles each: both alone
0
>>> alone_above([1, 1])          # two symbols, one candle each: alone beats a round too
0
>>> alone_above([1] * 30 + [12]) # thirty in one round, the deep one alone (else twelve rounds)
1
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

__all__ = ["ALONE_CANDLE_US", "ALONE_US", "ROUND_SERIES_US", "ROUND_US", "alone_above"]

ROUND_US = 400.0  # a bank round's fixed cost
ROUND_SERIES_US = 3.0  # and per series in it
ALONE_US = 140.0  # a series' state out of the bank and back
ALONE_CANDLE_US = 24.0  # and per candle through the scalar FeatureState


def alone_above(depths: Iterable[int]) -> int:
    """The depth ``d`` (0 = every series alone) such that the series with more than ``d`` candles in the batch
    are folded on their own and the others in ``max`` (depth <= ``d``) rounds: the cheapest split. Only the
    split by depth is considered: a series that goes alone saves the rounds only when every deeper one does."""
    counts = Counter(depths)
    series, candles = sum(counts.values()), sum(k * n for k, n in counts.items())
    best_cost, best = series * ALONE_US + candles * ALONE_CANDLE_US, 0
    in_rounds = in_round_candles = 0
    for depth in sorted(counts):
        in_rounds += counts[depth]
        in_round_candles += depth * counts[depth]
        cost = ((series - in_rounds) * ALONE_US + (candles - in_round_candles) * ALONE_CANDLE_US
                + depth * ROUND_US + in_round_candles * ROUND_SERIES_US)
        if cost < best_cost:
            best_cost, best = cost, depth
    return best
