"""``candleflow replay``: a deterministic backtest of the candle topics from offsets or times, through the worker's
own batch step (:mod:`candleflow.replay.run`), in one process or one per partition
(:mod:`~candleflow.replay.parallel`); the window of offsets a range of times maps to
(:mod:`~candleflow.replay.window`) and the files it writes (:mod:`~candleflow.replay.output`).

Names are imported on first use.
"""

from core.lazy_exports import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "replay": "candleflow.replay.run", "ReplayReport": "candleflow.replay.run", "ServingTimeline": "candleflow.replay.run",
    "replay_in_processes": "candleflow.replay.parallel", "ReplayOutputs": "candleflow.replay.parallel",
}, globals())
