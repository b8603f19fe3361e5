"""The dashboard: one HTML page (no external assets: it works offline) fed by ``/dashboard/data``.

It shows, for the symbols this worker owns, the last 60 candles with signal markers, the model in
use, throughput and end-to-end latency over the last 15 minutes, and live accuracy per model version
with the learning loop's events marked (retrain requests, candidates, promotions: streams.learning_history).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from importlib import resources
from itertools import chain, islice
from typing import TYPE_CHECKING, Any

from faust.web import Request, Response, View

from learning.trades import TradeResults
from core.candle import timeframe_ms
from kafka_io.consumer import json_safe
from features import FEATURE_NAMES, FeatureState
from features.window import WINDOW
from core.series_keys import split_series_key
from candleflow.web.errors import error

if TYPE_CHECKING:
    from streams.app import Pipeline

__all__ = ["attach_dashboard", "dashboard_series"]

_OHLC = [FEATURE_NAMES.index(n) for n in ("open", "high", "low", "close")]


def dashboard_series(key: str, state: FeatureState, signals: list[dict[str, Any]]) -> dict[str, Any]:
    """Chart data of one (symbol, timeframe): candles [time, o, h, l, c] and the signals among them."""
    symbol, timeframe = split_series_key(key)
    window = state.window(WINDOW)
    step = timeframe_ms(timeframe)
    first = state.last_open_time - step * (len(window) - 1)
    candles = [[first + i * step, *(float(row[j]) for j in _OHLC)] for i, row in enumerate(window)]
    shown = [s for s in signals if s["timeframe"] == timeframe and s["open_time"] >= first]
    return {"symbol": symbol, "timeframe": timeframe, "ready": state.ready, "candles": candles,
            "signals": [{"open_time": s["open_time"], "direction": s["direction"], "confidence": s["confidence"],
                         "entry_price": s["entry_price"]} for s in shown]}


SERIES_PAGE = 24  # series per /dashboard/data answer (``?limit=``, at most MAX_SERIES_PAGE; ``?offset=`` pages on)
MAX_SERIES_PAGE = 200


def series_page(live: Iterable[str], stored: Iterable[str], offset: int, limit: int) -> list[str]:
    """Keys ``offset`` .. ``offset + limit`` of the live series (most recently used last) then the stored
    ones, each once; walks no further than it shows, however many series the tables hold.

    >>> series_page(["b|5m", "a|5m"], ["a|5m", "c|5m", "d|5m"], offset=1, limit=2)
    ['a|5m', 'c|5m']
    """
    def unique() -> Iterator[str]:
        seen: set[str] = set()
        for key in chain(live, stored):
            if key not in seen:
                seen.add(key)
                yield key

    return list(islice(unique(), offset, offset + limit))


def _page_params(request: Request) -> tuple[int, int] | None:
    try:
        offset, limit = int(request.query.get("offset", "0")), int(request.query.get("limit", str(SERIES_PAGE)))
    except ValueError:
        return None
    return (offset, min(limit, MAX_SERIES_PAGE)) if offset >= 0 and limit >= 1 else None


def attach_dashboard(pipeline: Pipeline) -> None:
    app = pipeline.app
    page = resources.files("candleflow.web").joinpath("dashboard.html").read_bytes()

    @app.page("/")
    class Dashboard(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(page, content_type="text/html")

    @app.page("/dashboard/data")
    class DashboardData(View):
        async def get(self, request: Request) -> Response:
            page = _page_params(request)
            if page is None:
                return error(self, 400, f"offset must be an integer >= 0 and limit one >= 1 (at most {MAX_SERIES_PAGE})")
            series = []
            checkpoint = pipeline.worker.checkpoint
            async with checkpoint.batch_lock:
                keys = series_page(list(checkpoint.series), (k.decode() for k in pipeline.series.keys()), *page)
                for key in keys:
                    stored = checkpoint.current(key)
                    state = stored.features if stored is not None else None
                    if state is None or state.last_open_time is None:
                        continue
                    symbol, _ = split_series_key(key)
                    series.append(dashboard_series(key, state, pipeline.recent_signals.recent(symbol)))
                # what trading engines reported, per version: the live learners of this worker's partitions
                trades = TradeResults.merged([learner.trades for learner in checkpoint.learners.values()]).snapshot()
            model = pipeline.worker.model
            return self.json(json_safe({
                "series": sorted(series, key=lambda s: (s["symbol"], s["timeframe"])),
                "model": {"version": getattr(model, "version", None), "provider": getattr(model, "provider", None)},
                "stats": pipeline.stats.snapshot(),
                "history": list(pipeline.stats.history),
                "learning": pipeline.learning_history.snapshot(),
                "trades": trades,
            }))
