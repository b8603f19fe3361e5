"""Rolling features of candle series: one engine for serving (streaming) and training (batch).

- :class:`FeatureState`: the per-(symbol, timeframe) state the candle agent keeps in its table;
  ``update(candle)`` returns the feature vector in O(1).
- :class:`FeatureBank`: many symbols' states in numpy arrays, a batch of candles (one per
  symbol) updated in one call, bit-identical to one FeatureState per symbol.
- :func:`batch_features`: the features of a candle DataFrame, computed by FeatureState itself.
- :func:`compute_batch`: an independent vectorised implementation over a whole series, the
  oracle the streaming engine is tested against.
- :data:`FEATURE_NAMES`: the fixed order of the vector (27 ML Layer-1 features, then the
  classic indicators). docs/features.md defines every feature.

>>> import numpy as np
>>> from core.candle import Candle
>>> candles = [Candle("ETH-BTC", "5m", 300_000 * i, 1.0, 1.1, 0.9, 1.0 + 0.01 * (i % 7), 10.0 + i)
...            for i in range(50)]
>>> state = FeatureState()
>>> streamed = np.array([state.update(c) for c in candles])
>>> batch = compute_batch(candles)
>>> batch.shape == (50, len(FEATURE_NAMES)), bool(np.allclose(streamed, batch, rtol=1e-9, equal_nan=True))
(True, True)
"""

from features.bank import FeatureBank
from features.batch import compute_batch
from features.frame import batch_features
from features.names import FEATURE_NAMES
from features.state import FeatureState

__all__ = ["FEATURE_NAMES", "FeatureBank", "FeatureState", "batch_features", "compute_batch"]
