"""The candles a retrain learns from: the latest window of each series from the candle topics (what the
workers saw), candle files and the PostgreSQL ``candles`` table, narrowed to a request's scope."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from core.candle import Candle
from core.errors import ConfigError, InvalidInput
from training.evaluate import read_series
from training.walk_forward import WARM_UP

if TYPE_CHECKING:
    from core.settings_sections import RetrainConfig

__all__ = ["load_window"]

log = logging.getLogger(__name__)


def _postgres_rows_sql() -> str:
    return """
SELECT symbol, timeframe, (extract(epoch FROM open_time) * 1000)::bigint AS open_time, open, high, low, close, volume,
       quote_volume, trades, taker_buy_base_volume, taker_buy_quote_volume, spread_bps
FROM (SELECT *, row_number() OVER (PARTITION BY symbol, timeframe ORDER BY open_time DESC) AS rn FROM candles) c
WHERE rn <= $1 ORDER BY symbol, timeframe, open_time"""


async def load_window(config: RetrainConfig, store=None, scope: Mapping[str, Any] | None = None,
                      settings=None) -> list[list[Candle]]:
    """The latest ``window`` candles of each series from the files, the candle topics of ``settings``
    and (when it has rows) the candles table, later sources winning where several hold a candle.
    ``scope`` may narrow ``symbols`` / ``timeframes`` / ``window``; its ``since`` (candle time, ms: where a
    drift watch saw the market change) keeps the candles from then on, plus the warm-up the features
    need before it, and at least ``min_candles`` per series (a change seen moments ago blends in older ones)."""
    scope = scope or {}
    window = int(scope.get("window") or config.window)
    merged: dict[tuple[str, str], dict[int, Candle]] = {}
    sources = [read_series(config.files)] if config.files else []
    if config.use_topics and settings is not None:
        from training.topic_data import series_from_topic

        for timeframe in settings.timeframes:
            try:
                series, invalid = await series_from_topic(settings, settings.candle_topic(timeframe))
            except InvalidInput as exc:  # a timeframe nobody produces yet
                log.warning("%s", exc)
                continue
            log.info("%s: %d candles in %d series (%d invalid left out)", settings.candle_topic(timeframe),
                     sum(map(len, series)), len(series), invalid)
            sources.append(series)
    for source in sources:
        for candles in source:
            for c in candles:
                merged.setdefault((c.symbol, c.timeframe), {})[c.open_time] = c
    if config.use_postgres and store is not None:
        rows = await store.fetch(_postgres_rows_sql(), window)
        for r in rows:
            c = Candle(**dict(r))
            merged.setdefault((c.symbol, c.timeframe), {})[c.open_time] = c
        log.info("candles table: %d rows in %d series", len(rows), len({(r["symbol"], r["timeframe"]) for r in rows}))
    symbols, timeframes = set(scope.get("symbols") or []), set(scope.get("timeframes") or [])
    series = []
    for (symbol, timeframe), by_time in sorted(merged.items()):
        if (symbols and symbol not in symbols) or (timeframes and timeframe not in timeframes):
            continue
        candles = [by_time[t] for t in sorted(by_time)][-window:]
        since = scope.get("since")
        if isinstance(since, int) and not isinstance(since, bool):
            first = next((i for i, c in enumerate(candles) if c.open_time >= since), len(candles))
            candles = candles[max(0, min(first - WARM_UP, len(candles) - config.min_candles)):]
        series.append(candles)
    if not series:
        raise ConfigError("no candles to retrain on: none on the candle topics, CANDLEFLOW_RETRAIN_FILES "
                          "or the candles table")
    return series
