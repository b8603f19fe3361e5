"""Trade results per model version: what a trading engine made of the signals (Outcome records, source TRADE).

A trading engine publishes one Outcome per closed trade (``schemas/outcome.avsc``: ``source`` TRADE, the
``signal_id`` or ``prediction_id`` it acted on, ``model_version``, ``entry_price``, ``exit_price``, ``pnl``,
``status``). :func:`trade_outcome` checks such a record and fills its deterministic id; :class:`TradeResults`
keeps, per model version, the trade count, wins (``pnl > 0``), total and mean P&L, and the hit rate of the
last ``window`` trades, in a JSON state (a changelog value).

>>> results = TradeResults(window=3)
>>> for pnl in (1.5, -0.5, 2.0, -1.0):
...     results.update(trade_outcome({"symbol": "ETH-BTC", "timeframe": "5m", "open_time": 0, "horizon": 1,
...                                   "signal_id": "s1", "model_version": "v1", "pnl": pnl, "status": "closed"}))
>>> row = results.snapshot()[0]
>>> row["trades"], row["wins"], row["pnl_total"], row["hit_rate"], row["recent_hit_rate"]
(4, 2, 2.0, 0.5, 0.3333)
>>> TradeResults.from_bytes(results.to_bytes()).snapshot() == results.snapshot()
True
>>> TradeResults.merged([results, results]).snapshot()[0]["trades"]
8
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import Any

from learning._state import dump_state, load_state
from learning.labelling import outcome_id
from core.candle import SYMBOL_CHARACTERS, TIMEFRAME_MS, valid_symbol
from core.errors import InvalidInput

__all__ = ["TradeResults", "trade_outcome"]

_FORMAT = 1
_MAX_VERSIONS = 64  # versions kept (oldest dropped): bounded state whatever arrives


def trade_outcome(record: Mapping[str, Any]) -> dict[str, Any]:
    """A complete Outcome record (source TRADE) from a trade result; InvalidInput with the reason if it is
    not one. The id is derived from the signal (or prediction) and horizon, so a resent result upserts."""
    def number(name: str, required: bool = False) -> float | None:
        value = record.get(name)
        if value is None:
            if required:
                raise InvalidInput(f"trade result lacks {name}")
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InvalidInput(f"trade result {name} must be a finite number, got {value!r:.40}")
        return float(value)

    symbol, timeframe = record.get("symbol"), record.get("timeframe")
    if not valid_symbol(symbol):
        raise InvalidInput(f"trade result symbol must be 1 to 64 of {SYMBOL_CHARACTERS}, got {symbol!r:.40}")
    if timeframe not in TIMEFRAME_MS:
        raise InvalidInput(f"trade result has an unknown timeframe {timeframe!r:.20}")
    open_time, horizon = record.get("open_time"), record.get("horizon", 1)
    if isinstance(open_time, bool) or not isinstance(open_time, int) or open_time < 0:
        raise InvalidInput(f"trade result open_time must be epoch milliseconds, got {open_time!r:.40}")
    if isinstance(horizon, bool) or not isinstance(horizon, int) or not 1 <= horizon <= 1000:
        raise InvalidInput(f"trade result horizon must be an integer in 1..1000, got {horizon!r:.20}")
    source_id = record.get("signal_id") or record.get("prediction_id")
    if not isinstance(source_id, str) or not source_id or len(source_id) > 128:
        raise InvalidInput("trade result names neither its signal_id nor its prediction_id")
    version = record.get("model_version")
    if version is not None and (not isinstance(version, str) or len(version) > 128):
        raise InvalidInput(f"trade result model_version must be a string, got {version!r:.40}")
    status = record.get("status")
    if status is not None and (not isinstance(status, str) or len(status) > 32):
        raise InvalidInput(f"trade result status must be a short string, got {status!r:.40}")
    pnl = number("pnl", required=True)
    entry, exit_ = number("entry_price"), number("exit_price")
    for name, price in (("entry_price", entry), ("exit_price", exit_)):
        if price is not None and price <= 0:
            raise InvalidInput(f"trade result {name} must be positive, got {price}")
    move = math.log(exit_ / entry) if entry and exit_ else None
    return {"id": outcome_id(source_id, horizon, "TRADE"), "source": "TRADE",
            "prediction_id": record.get("prediction_id"), "signal_id": record.get("signal_id"),
            "symbol": symbol, "timeframe": timeframe, "open_time": open_time, "horizon": horizon,
            "model_version": version, "realized_log_return": move, "direction_correct": None if pnl == 0 else pnl > 0,
            "entry_price": entry, "exit_price": exit_, "pnl": pnl, "status": status}


class TradeResults:
    """Per model version: trades, wins, P&L, and the hit rate of the last ``window`` trades."""

    def __init__(self, window: int = 100) -> None:
        self.window = window
        self._by_version: dict[str, dict[str, Any]] = {}

    def update(self, outcome: Mapping[str, Any]) -> None:
        """Count one TRADE outcome (others are ignored)."""
        if outcome.get("source") != "TRADE" or outcome.get("pnl") is None:
            return
        version = outcome.get("model_version") or "unknown"
        row = self._by_version.pop(version, None) or {"trades": 0, "wins": 0, "pnl_total": 0.0,
                                                      "recent": deque(maxlen=self.window)}
        self._by_version[version] = row  # most recently traded last: the oldest go first past the cap
        pnl = float(outcome["pnl"])
        row["trades"] += 1
        row["wins"] += pnl > 0
        row["pnl_total"] += pnl
        row["recent"].append(1 if pnl > 0 else 0)
        while len(self._by_version) > _MAX_VERSIONS:
            del self._by_version[next(iter(self._by_version))]

    def snapshot(self) -> list[dict[str, Any]]:
        out = []
        for version, row in sorted(self._by_version.items()):
            n, recent = row["trades"], row["recent"]
            out.append({"model_version": version, "trades": n, "wins": row["wins"], "pnl_total": round(row["pnl_total"], 10),
                        "pnl_mean": round(row["pnl_total"] / n, 10), "hit_rate": round(row["wins"] / n, 4),
                        "recent_hit_rate": round(sum(recent) / len(recent), 4), "recent": len(recent)})
        return out

    @classmethod
    def merged(cls, parts: list[TradeResults]) -> TradeResults:
        """The results of several partitions as one (per version: sums, recent windows joined)."""
        out = cls(max([p.window for p in parts], default=100) * max(len(parts), 1))
        for part in parts:
            for version, row in part._by_version.items():
                mine = out._by_version.setdefault(version, {"trades": 0, "wins": 0, "pnl_total": 0.0,
                                                            "recent": deque(maxlen=out.window)})
                mine["trades"] += row["trades"]
                mine["wins"] += row["wins"]
                mine["pnl_total"] += row["pnl_total"]
                mine["recent"].extend(row["recent"])
        return out

    @property
    def total(self) -> int:
        return sum(row["trades"] for row in self._by_version.values())

    def to_bytes(self) -> bytes:
        return dump_state("trade-results", _FORMAT, {"window": self.window, "versions": [
            [v, r["trades"], r["wins"], r["pnl_total"], list(r["recent"])] for v, r in self._by_version.items()]})

    @classmethod
    def from_bytes(cls, blob: bytes) -> TradeResults:
        state = load_state("trade-results", _FORMAT, blob)
        results = cls(int(state["window"]))
        for version, trades, wins, pnl_total, recent in state["versions"]:
            results._by_version[str(version)] = {"trades": int(trades), "wins": int(wins), "pnl_total": float(pnl_total),
                                                 "recent": deque((int(x) for x in recent), maxlen=results.window)}
        return results
