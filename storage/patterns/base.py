"""What a pattern store is, and the consensus its neighbours give.

A *pattern* is the embedding of a symbol's recent window (:mod:`storage.patterns.embedding`) together
with what happened next (``outcome``: the realised log return over the horizon). Patterns are stored
only once their outcome is known, so a query at time *t* can only see the past.

>>> ns = [Neighbour(PatternMeta("ETH-BTC", "5m", 1, 0.02), 0.9),
...       Neighbour(PatternMeta("LTC-BTC", "5m", 2, -0.01), 0.8),
...       Neighbour(PatternMeta("ADA-BTC", "5m", 3, 0.01), 0.7)]
>>> c = consensus(ns)
>>> c.k, round(c.bullish_share, 3), round(c.bearish_share, 3), round(c.mean_outcome, 4)
(3, 0.667, 0.333, 0.0067)
>>> consensus([]).k
0
"""

from __future__ import annotations

import math
from typing import NamedTuple, Protocol, Sequence, runtime_checkable

import numpy as np

__all__ = ["Consensus", "Neighbour", "PatternMeta", "PatternStore", "consensus"]


class PatternMeta(NamedTuple):
    """Where a pattern comes from and what followed it."""

    symbol: str
    timeframe: str
    open_time: int  # epoch ms of the window's last candle
    outcome: float  # realised log return over the horizon after open_time

    @property
    def key(self) -> str:
        """Identity of a pattern: adding the same key twice must not count it twice."""
        return f"{self.symbol}|{self.timeframe}|{self.open_time}"


class Neighbour(NamedTuple):
    meta: PatternMeta
    similarity: float  # cosine similarity, 1 = same shape


class Consensus(NamedTuple):
    """What the k nearest historical patterns say. Shares are 0 and mean NaN when there are none."""

    k: int
    bullish_share: float
    bearish_share: float
    mean_outcome: float
    mean_similarity: float

    def as_fields(self, prefix: str = "pattern_") -> dict[str, float | int | None]:
        """Flat fields to add to a signal (NaN becomes None so JSON/Avro/SQL take it)."""
        return {prefix + name: (None if isinstance(v, float) and math.isnan(v) else v)
                for name, v in self._asdict().items()}


def consensus(neighbours: Sequence[Neighbour]) -> Consensus:
    """Share of bullish (outcome > 0) and bearish (< 0) neighbours and their mean outcome.

    A zero outcome counts as neither, so the shares need not add to one.
    """
    if not neighbours:
        return Consensus(0, 0.0, 0.0, math.nan, math.nan)
    outcomes = np.fromiter((n.meta.outcome for n in neighbours), dtype=np.float64, count=len(neighbours))
    sims = np.fromiter((n.similarity for n in neighbours), dtype=np.float64, count=len(neighbours))
    k = len(neighbours)
    return Consensus(k, float((outcomes > 0).sum() / k), float((outcomes < 0).sum() / k),
                     float(outcomes.mean()), float(sims.mean()))


@runtime_checkable
class PatternStore(Protocol):
    """A k-nearest-neighbour store of pattern vectors. Async, because some live behind a network.

    ``add`` is idempotent by :attr:`PatternMeta.key`: replays do not create duplicate neighbours.
    """

    dim: int

    async def add(self, vectors: np.ndarray, metadata: Sequence[PatternMeta]) -> int:
        """Store ``vectors`` (n x dim) with their metadata; returns how many were new."""
        ...

    async def query(self, vector: np.ndarray, k: int) -> list[Neighbour]:
        """The ``k`` most similar stored patterns, most similar first."""
        ...

    async def count(self) -> int: ...

    async def close(self) -> None: ...
