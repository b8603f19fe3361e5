"""Labelling: a prediction made at candle ``t`` meets the candle at ``t + h`` and becomes an Outcome.

One :class:`Labeller` per (symbol, timeframe) remembers the predictions still waiting for their label
candle (id, close, direction, model version, features) and, when a candle arrives, returns the Outcome
records (``schemas/outcome.avsc``, source ``LABEL``) of the predictions whose horizon ends exactly there.

Rules, chosen to agree with training (:mod:`training.dataset`):

- the label candle is found by **time**, ``open_time + h * candle length``: across a gap, "h candles later"
  does not exist, and the prediction expires unlabelled, as training drops such rows;
- ``realized_log_return = log(close[t + h] / close[t])``; ``direction_correct`` is whether the predicted
  direction matches its sign, and None for an exact tie (training drops ties too), so a flat market
  neither rewards nor punishes a model;
- no look-ahead: an outcome is only produced by the candle at ``t + h``; a prediction whose label candle
  has already gone by is refused (counted in ``late``), never labelled with a later price;
- bounded memory: every pending entry's label candle is at most ``max_horizon`` candles ahead, entries
  whose time has passed are dropped (``expired``), and ``max_pending`` caps what a bogus future-dated
  prediction could pin;
- outcome ids are deterministic (prediction id + horizon), so a replay upserts instead of duplicating.

>>> from core.candle import Candle
>>> lab = Labeller("ETH-BTC", "5m")
>>> c0 = Candle("ETH-BTC", "5m", 0, 1.0, 1.0, 1.0, 1.00, 1.0)
>>> _ = lab.observe(c0)
>>> lab.add_prediction({"id": "p0", "symbol": "ETH-BTC", "timeframe": "5m", "open_time": 0, "close": 1.0,
...     "horizon": 1, "direction": "UP", "model_version": "v1", "features": [0.5, float("nan")]})
True
>>> [done] = lab.observe(Candle("ETH-BTC", "5m", 300_000, 1.0, 1.1, 1.0, 1.05, 1.0))
>>> done.outcome["horizon"], round(done.outcome["realized_log_return"], 5), done.outcome["direction_correct"], done.label
(1, 0.04879, True, 1)
>>> Labeller.from_bytes(lab.to_bytes()).pending
0
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from learning._state import dump_state, load_state
from core.candle import Candle, timeframe_ms
from core.errors import DecodeError, InvalidInput

__all__ = ["Labelled", "Labeller", "outcome_id"]

_FORMAT = 2  # 2: each pending entry's features as base64 float64 (JSON floats cost ~0.5 us each); 1 is still read


_SOURCES = {source: json.dumps(source) for source in ("LABEL", "TRADE")}


def outcome_id(prediction_id: str, horizon: int, source: str = "LABEL") -> str:
    """Deterministic id of the outcome of one prediction at one horizon (32 hex characters).

    >>> outcome_id("p0", 1) == outcome_id("p0", 1) != outcome_id("p0", 2)
    True
    """
    # = json.dumps(["outcome", source, prediction_id, int(horizon)], separators=(",", ":")), without the list;
    # a prediction id is hex, which JSON quotes as it is (json.dumps per id was ~1.5 us of ~3)
    quoted = f'"{prediction_id}"' if prediction_id.isalnum() and prediction_id.isascii() else json.dumps(prediction_id)
    key = f'["outcome",{_SOURCES.get(source) or json.dumps(source)},{quoted},{int(horizon)}]'
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def _pack_floats(values: np.ndarray) -> str:
    return base64.b64encode(np.asarray(values, dtype="<f8").tobytes()).decode("ascii")


def _unpack_floats(text: str) -> np.ndarray:
    raw = base64.b64decode(text, validate=True)
    if len(raw) % 8:
        raise ValueError("features are not a whole number of float64")
    return np.frombuffer(raw, dtype="<f8").astype(np.float64)


def _as_row(values: Any) -> np.ndarray:
    """Features as one float64 vector (None: NaN), what the online model and the drift watch read."""
    return np.asarray(values if values is not None else (), dtype=np.float64)


class Labelled(NamedTuple):
    """One labelled prediction: the Outcome record, the features it was made from, the training label
    (1 = the close rose over the horizon, 0 = fell, None = unchanged) for the online model, and the
    prediction's confidence (None in states from before it was kept) for the adaptive threshold."""

    outcome: dict[str, Any]
    features: np.ndarray  # float64, FEATURE_NAMES order
    label: int | None
    confidence: float | None = None


# A pending entry, stored as a list so the state is plain JSON:
# [prediction_id, open_time, close, direction, model_version, horizon, features, signal_id, confidence]
# (the last two are absent in states written before the adaptive threshold)
_PID, _TIME, _CLOSE, _DIR, _VERSION, _H, _FEATURES, _SIGNAL, _CONFIDENCE = range(9)


class Labeller:
    """Pending predictions of one (symbol, timeframe) and their labelling; see the module docstring.

    ``all_horizons=True`` labels every prediction at each h in 1..``max_horizon`` (so one model's accuracy
    can be read at several horizons); by default a prediction is labelled at its own ``horizon`` only.
    """

    def __init__(self, symbol: str, timeframe: str, max_horizon: int = 5, all_horizons: bool = False,
                 max_pending: int = 1024) -> None:
        if max_horizon < 1:
            raise ValueError(f"max_horizon must be at least 1, got {max_horizon}")
        self.symbol, self.timeframe = symbol, timeframe
        self.step_ms = timeframe_ms(timeframe)
        self.max_horizon, self.all_horizons, self.max_pending = max_horizon, all_horizons, max_pending
        self.last_open_time: int | None = None
        self._pending: dict[int, list[list[Any]]] = {}  # label candle open time -> entries
        self.labelled = self.expired = self.late = self.dropped = 0

    @property
    def pending(self) -> int:
        """Predictions (per horizon) still waiting for their label candle."""
        return sum(map(len, self._pending.values()))

    def add_prediction(self, prediction: Mapping[str, Any], signal_id: str | None = None,
                       features: np.ndarray | None = None) -> bool:
        """Remember a Prediction record (``schemas/prediction.avsc``); False if it can never be labelled
        (its label candle has already gone by) or is already pending (a replay). ``signal_id``: the signal
        it became, named by its outcome (what the adaptive threshold judges); ``features``: the record's
        features as the float64 row they were made from, when the caller has it (no list to convert)."""
        if prediction["symbol"] != self.symbol or prediction["timeframe"] != self.timeframe:
            raise InvalidInput(f"prediction for {prediction['symbol']} {prediction['timeframe']} sent to the "
                               f"labeller of {self.symbol} {self.timeframe}")
        own = int(prediction["horizon"])
        if not 1 <= own <= self.max_horizon:
            raise InvalidInput(f"horizon {own} is outside 1..{self.max_horizon}")
        close = float(prediction["close"])
        if not (math.isfinite(close) and close > 0):
            raise InvalidInput(f"prediction close must be a positive number, got {close}")
        open_time = int(prediction["open_time"])
        added = False
        row = _as_row(prediction.get("features")) if features is None else np.array(features, dtype=np.float64)  # own copy
        for h in range(1, self.max_horizon + 1) if self.all_horizons else (own,):
            target = open_time + h * self.step_ms
            if self.last_open_time is not None and target <= self.last_open_time:
                self.late += 1  # labelling it now would use a price from after its horizon
                continue
            entries = self._pending.setdefault(target, [])
            if any(e[_PID] == prediction["id"] and e[_H] == h for e in entries):
                continue
            entries.append([prediction["id"], open_time, close, prediction["direction"],
                            prediction["model_version"], h, row, signal_id,
                            prediction.get("confidence")])
            added = True
        self._enforce_cap()
        return added

    def observe(self, candle: Candle) -> list[Labelled]:
        """The outcomes the candle at ``candle.open_time`` completes; a candle not newer than the last is ignored
        (the feature state refuses it as well)."""
        if (candle.symbol, candle.timeframe) != (self.symbol, self.timeframe):
            raise InvalidInput(f"candle for {candle.symbol} {candle.timeframe} sent to the labeller of "
                               f"{self.symbol} {self.timeframe}")
        t = candle.open_time
        if self.last_open_time is not None and t <= self.last_open_time:
            return []
        self.last_open_time = t
        for target in [k for k in self._pending if k < t]:
            self.expired += len(self._pending.pop(target))  # its label candle is missing (a gap)
        out = [self._label(e, candle) for e in self._pending.pop(t, [])]
        self.labelled += len(out)
        return out

    def _label(self, e: list[Any], candle: Candle) -> Labelled:
        r = math.log(candle.close / e[_CLOSE])
        label = None if r == 0.0 else int(r > 0.0)
        correct = None if label is None else (e[_DIR] == "UP") == bool(label)
        record = {
            "id": outcome_id(e[_PID], e[_H]), "source": "LABEL", "prediction_id": e[_PID],
            "signal_id": e[_SIGNAL] if len(e) > _SIGNAL else None,
            "symbol": self.symbol, "timeframe": self.timeframe, "open_time": e[_TIME], "horizon": e[_H],
            "model_version": e[_VERSION], "realized_log_return": r, "direction_correct": correct,
            "entry_price": None, "exit_price": None, "pnl": None, "status": None,
        }
        return Labelled(record, e[_FEATURES], label, e[_CONFIDENCE] if len(e) > _CONFIDENCE else None)

    def _enforce_cap(self) -> None:
        # Only a future-dated prediction can push past the cap; drop the furthest-out ones, which are
        # the least plausible, so the normal next-candle labels are kept.
        while self.pending > self.max_pending:
            target = max(self._pending)
            self._pending[target].pop()
            self.dropped += 1
            if not self._pending[target]:
                del self._pending[target]

    def to_bytes(self) -> bytes:
        """The whole state as a versioned JSON blob (a Faust table value)."""
        pending = [(target, [[*e[:_FEATURES], _pack_floats(e[_FEATURES]), *e[_SIGNAL:]] for e in entries])
                   for target, entries in sorted(self._pending.items())]
        return dump_state("labeller", _FORMAT, {
            "symbol": self.symbol, "timeframe": self.timeframe, "max_horizon": self.max_horizon,
            "all_horizons": self.all_horizons, "max_pending": self.max_pending,
            "last_open_time": self.last_open_time, "pending": pending,
            "counts": [self.labelled, self.expired, self.late, self.dropped],
        })

    @classmethod
    def from_bytes(cls, blob: bytes) -> Labeller:
        try:
            s, unpack_features = load_state("labeller", _FORMAT, blob), _unpack_floats
        except DecodeError:
            s, unpack_features = load_state("labeller", 1, blob), _as_row  # written before format 2
        lab = cls(s["symbol"], s["timeframe"], s["max_horizon"], s["all_horizons"], s["max_pending"])
        lab.last_open_time = s["last_open_time"]
        try:
            lab._pending = {int(k): [[*e[:_FEATURES], unpack_features(e[_FEATURES]), *e[_SIGNAL:]] for e in v]
                            for k, v in s["pending"]}
        except (TypeError, ValueError, IndexError, binascii.Error) as exc:
            raise DecodeError(f"labeller state: bad pending entries ({exc})") from None
        lab.labelled, lab.expired, lab.late, lab.dropped = s["counts"]
        return lab

    def features_of(self, prediction_id: str) -> Sequence[float] | None:
        """Features of a still-pending prediction (for joining a TRADE outcome that arrives early)."""
        for entries in self._pending.values():
            for e in entries:
                if e[_PID] == prediction_id:
                    return tuple(e[_FEATURES].tolist())
        return None
