"""The retrain worker: ``retrain-requests`` in, a candidate version (or the reason why not) out.

One request at a time: the consumer (its own group, manual commits) hands each request to
:meth:`RetrainWorker.handle`, which trains in a thread (the event loop keeps the group heartbeat) on
the latest window of candles (by default the candle topics — what the workers saw — plus any files and
the PostgreSQL ``candles`` table; from where the request's drift watch saw the change), evaluates the candidate
and the active version on the *same* rows — those neither was fit on (:func:`training.evaluate.common_holdout`)
— and registers the candidate. It becomes the ``candidate`` (traffic share from config) when it is at least
as good on the configured metric (``tolerance`` allowed), otherwise the registry records a ``reject``
with the numbers. The offset is committed after each handled request, so a crash retrains at most once more.

Coalescing: a request that was produced while a retrain was running, or (unless it is manual) within
``cooldown_s`` after one finished, is acknowledged and skipped; the retrain that ran already used the
latest data. Its id is logged with the retrain it was folded into.

>>> decide({"1": {"classification": {"accuracy": 0.55}}}, {"1": {"classification": {"accuracy": 0.56}}},
...        metric="accuracy", tolerance=0.0)
(False, 'accuracy 0.5500 vs active 0.5600 (tolerance 0.0): worse')
>>> decide({"1": {"classification": {"log_loss": 0.68}}}, {"1": {"classification": {"log_loss": 0.69}}},
...        metric="log_loss", tolerance=0.0)[0]
True
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.candle import Candle
from core.errors import CandleflowError, ConfigError, InvalidInput
from kafka_io.security import aiokafka_security
from core.settings import from_env
from training.evaluate import (
    EvalConfig,
    common_holdout,
    evaluate_series,
    load_scorer,
    read_series,
)
from training.walk_forward import WARM_UP, walk_forward

__all__ = ["METRICS", "RetrainConfig", "RetrainTrial", "RetrainWorker", "decide", "load_window", "retrain_and_compare"]

log = logging.getLogger(__name__)

METRICS = {"accuracy": 1, "auc": 1, "log_loss": -1}  # +1: higher is better
_PREFIX = "CANDLEFLOW_RETRAIN_"


@dataclass(frozen=True)
class RetrainConfig:
    """Read from ``CANDLEFLOW_RETRAIN_<FIELD>`` (``files`` comma-separated); ``artifacts_dir`` from
    ``CANDLEFLOW_ARTIFACTS_DIR``; parsed by the worker's own environment parser (``core.settings``)."""

    files: tuple[Path, ...] = ()
    use_topics: bool = True            # the candle topics: what the workers saw (training.topic_data)
    use_postgres: bool = True
    window: int = 5000                 # latest candles per (symbol, timeframe)
    min_candles: int = 400             # per series at least, from before a request's ``since`` if need be
    name: str = "lgbm-direction"       # the registry model name that is retrained
    share: float = 0.1                 # traffic share of a new candidate
    cooldown_s: float = 300.0
    metric: str = "accuracy"
    tolerance: float = 0.0             # how much worse than the active version still counts as "as good"
    num_boost_round: int = 100
    valid_fraction: float = 0.2
    walk_forward_folds: int = 3        # the decision's folds (training/walk_forward.py); 0: the holdout alone
    mamba_epochs: int = 20             # a retrained sequence member (when the active bundle has one)
    threshold: float = 0.3
    cost_bps: float = 10.0
    group_id: str = "candleflow-retrain"
    work_dir: Path = Path("var/retrain")
    artifacts_dir: Path = Path("var/artifacts")

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.metric not in METRICS:
            raise ConfigError(f"{_PREFIX}METRIC must be one of {', '.join(METRICS)}, got {self.metric!r}")
        if not 0.0 < self.share <= 1.0:
            raise ConfigError(f"{_PREFIX}SHARE must be in (0, 1], got {self.share}")
        if self.window < 200 or self.num_boost_round < 1 or self.cooldown_s < 0 or self.mamba_epochs < 1:
            raise ConfigError(f"{_PREFIX}WINDOW must be >= 200, NUM_BOOST_ROUND >= 1, COOLDOWN_S >= 0, MAMBA_EPOCHS >= 1")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> RetrainConfig:
        """Read ``CANDLEFLOW_RETRAIN_<FIELD>`` (and ``CANDLEFLOW_ARTIFACTS_DIR``) from ``env``; ``overrides`` win."""
        return from_env(cls, env, overrides, prefix=_PREFIX, names={"artifacts_dir": "CANDLEFLOW_ARTIFACTS_DIR"})


def decide(candidate: Mapping[str, Any], active: Mapping[str, Any], metric: str, tolerance: float) -> tuple[bool, str]:
    """(at least as good?, the reason with both numbers), on the mean of ``metric`` over the shared horizons."""
    horizons = sorted(set(candidate) & set(active))
    if not horizons:
        return False, "no horizon in common with the active version"
    values = []
    for report in (candidate, active):
        xs = [report[h]["classification"][metric] for h in horizons]
        values.append(None if any(x is None for x in xs) else sum(xs) / len(xs))
    cand, act = values
    if cand is None or act is None:
        return False, f"{metric} undefined on the holdout"
    ok = METRICS[metric] * (cand - act) >= -tolerance
    return ok, f"{metric} {cand:.4f} vs active {act:.4f} (tolerance {tolerance}): {'at least as good' if ok else 'worse'}"


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


@dataclass(frozen=True)
class RetrainTrial:
    """A model trained on ``trained_on`` in ``out_dir``, judged against the active one on the same rows."""

    version: str
    out_dir: Path
    decision: str  # "candidate" (at least as good), "rejected", or "unchanged" (identical to the active)
    reason: str
    trained_on: dict[str, Any]
    candidate: dict[str, Any] | None  # evaluation reports (training.evaluate), None when not comparable
    active: dict[str, Any] | None
    walk_forward: dict[str, Any] | None = None  # training.walk_forward.WalkForward.to_dict()


def sequence_config(active_scorer: Any) -> Any:
    """The architecture (``MambaConfig``) of the active bundle's sequence member, which a retrain trains
    again on the new data; None when the active model has none."""
    if active_scorer is None or active_scorer.kind != "bundle":
        return None
    from models.bundle import SEQUENCE_DIR
    from models.mamba.metadata import METADATA_FILE, MambaMetadata

    meta = Path(active_scorer.path) / SEQUENCE_DIR / METADATA_FILE
    if not meta.is_file():
        return None
    from models.mamba.classifier import MambaConfig

    return MambaConfig.from_dict(MambaMetadata.from_json(meta.read_text("utf-8")).config)


def retrain_and_compare(series: Sequence[Sequence[Candle]], active_scorer: Any, out_dir: Path,
                        config: RetrainConfig) -> RetrainTrial:
    """Train the kind of model ``active_scorer`` is (a bundle with its horizons, or one horizon; horizon 1
    without one) on ``series``, and compare both on the rows neither was fit on (:func:`common_holdout`).
    Blocking: run it in a thread. Registers nothing (the worker does, the demo only reports)."""
    from training.train import train_horizons_on_series, train_on_series

    horizons = active_scorer.horizons if active_scorer else (1,)
    opts = dict(progress=sys.stderr.isatty(),  # tqdm bars on a terminal, log lines only in a service
                valid_fraction=config.valid_fraction, num_boost_round=config.num_boost_round)
    sequence = sequence_config(active_scorer)

    def train(data: Sequence[Sequence[Candle]], where: Path, with_sequence: bool = False) -> None:
        if active_scorer is not None and active_scorer.kind == "bundle":
            train_horizons_on_series(data, where, horizons, **opts)
            if with_sequence:
                from models.bundle import SEQUENCE_DIR
                from training.mamba import train_mamba_on_series

                train_mamba_on_series(data, where / SEQUENCE_DIR, progress=opts["progress"], config=sequence,
                                      epochs=config.mamba_epochs)
        else:
            train_on_series(data, where, horizons[0], **opts)

    # Every member the active bundle has; the comparisons (the holdout, the walk-forward folds) score feature
    # rows, the LightGBM members, so the folds train those alone.
    train(series, out_dir, with_sequence=sequence is not None)
    candidate = load_scorer(out_dir)
    trained_on = {"series": len(series), "candles": sum(map(len, series)),
                  "from": min(s[0].open_time for s in series), "to": max(s[-1].open_time for s in series)}
    if active_scorer is not None and candidate.version == active_scorer.version:
        return RetrainTrial(candidate.version, out_dir, "unchanged", "the retrained model is identical to the active version",
                            trained_on, None, None)
    # Every row of a symbol the active model never trained on counts (a leak through correlated symbols
    # could only favour the active model); rows it or the candidate were fit on never do.
    eval_cfg = EvalConfig(threshold=config.threshold, cost_bps=config.cost_bps, unseen_symbols="all")
    since = common_holdout(*[s for s in (candidate, active_scorer) if s is not None])
    try:
        cand_report = evaluate_series(candidate, series, eval_cfg, since=since)
        active_report = evaluate_series(active_scorer, series, eval_cfg, since=since) if active_scorer else None
    except ConfigError as exc:
        return RetrainTrial(candidate.version, out_dir, "rejected", f"no common holdout to compare on: {exc}",
                            trained_on, None, None)
    folds = None
    if active_report is None:
        ok, reason = True, "no active version to compare with"
    else:
        ok, reason = decide(cand_report["horizons"], active_report["horizons"], config.metric, config.tolerance)
        if config.walk_forward_folds:
            folds = walk_forward(series, active_scorer, train, out_dir.with_name(out_dir.name + "-folds"),
                                 config.metric, config.walk_forward_folds, eval_config=eval_cfg)
            if folds.candidate is not None:  # the folds decide; the single holdout is reported with them
                ok = METRICS[config.metric] * (folds.candidate - folds.active) >= -config.tolerance
                reason = (f"walk-forward over {len(folds.scored)} folds: {config.metric} {folds.candidate:.4f} vs active "
                          f"{folds.active:.4f} (tolerance {config.tolerance}): {'at least as good' if ok else 'worse'}; "
                          f"holdout: {reason}")
    return RetrainTrial(candidate.version, out_dir, "candidate" if ok else "rejected", reason, trained_on,
                        cand_report, active_report, folds.to_dict() if folds is not None else None)


class RetrainWorker:
    """Consumes ``retrain-requests`` and retrains through ``registry`` (:class:`training.registry.ModelRegistry`)."""

    def __init__(self, settings, config: RetrainConfig, registry) -> None:
        self.settings, self.config, self.registry = settings, config, registry
        self.last_finished: float | None = None   # wall clock, seconds
        self.handled: list[dict[str, Any]] = []

    def _skip_reason(self, request: Mapping[str, Any], produced_ms: int) -> str | None:
        if self.last_finished is None:
            return None
        if produced_ms / 1000 <= self.last_finished:
            return "arrived while a retrain was running; folded into it"
        manual = "manual" in (request.get("reasons") or [])
        if not manual and time.time() - self.last_finished < self.config.cooldown_s:
            return f"within the {self.config.cooldown_s:.0f} s cooldown after the last retrain"
        return None

    async def handle(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Train, evaluate against the active version, register; returns what happened (also logged)."""
        cfg, started = self.config, time.monotonic()
        rid = str(request.get("id") or uuid.uuid4().hex)
        log.info("retrain %s: reasons %s, scope %s", rid, request.get("reasons"), request.get("scope"))
        active = await self.registry.active(cfg.name)
        active_scorer = load_scorer(await self.registry.artifact_dir(active["version"])) if active else None
        series = await load_window(cfg, self.registry.store if cfg.use_postgres else None, request.get("scope"),
                                   self.settings)
        log.info("retrain %s: %d candles in %d series, from %s", rid, sum(map(len, series)), len(series),
                 min(s[0].open_time for s in series))
        out_dir = (cfg.work_dir / rid).resolve()
        trial = await asyncio.to_thread(retrain_and_compare, series, active_scorer, out_dir, cfg)
        result: dict[str, Any] = {"request": rid, "version": trial.version, "active": active and active["version"],
                                  "trained_on": trial.trained_on, "walk_forward": trial.walk_forward}
        if trial.decision == "unchanged":
            result.update(decision="unchanged", reason=trial.reason)
            log.info("retrain %s: %s", rid, result["reason"])
            return self._done(result, started)
        ok, reason, cand_report, active_report = trial.decision == "candidate", trial.reason, trial.candidate, trial.active
        note = f"retrain {rid} ({', '.join(request.get('reasons') or ['?'])}): {reason}"
        version = await self.registry.register(out_dir, name=cfg.name, evaluation=cand_report)
        if active_report is not None:
            await self.registry.add_evaluation(active["version"], active_report, kind=f"holdout-for-{version}")
        if ok:
            await self.registry.set_candidate(version, cfg.share, note=note)
        else:
            await self.registry.reject(version, note=note)
        result.update(decision="candidate" if ok else "rejected", reason=reason)
        log.info("retrain %s: %s %s: %s", rid, version, result["decision"], reason)
        return self._done(result, started)

    def _done(self, result: dict[str, Any], started: float) -> dict[str, Any]:
        result["seconds"] = round(time.monotonic() - started, 2)
        self.last_finished = time.time()
        self.handled.append(result)
        return result

    async def run(self, stop: asyncio.Event | None = None, max_requests: int | None = None) -> None:
        """Consume until ``stop`` is set (or ``max_requests`` were handled or skipped)."""
        from aiokafka import AIOKafkaConsumer

        stop = stop or asyncio.Event()
        topic = self.settings.topic("retrain-requests")
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=self.settings.broker, group_id=self.config.group_id, **aiokafka_security(self.settings),
                                    enable_auto_commit=False, auto_offset_reset="earliest",
                                    session_timeout_ms=10_000, heartbeat_interval_ms=1_500,
                                    max_poll_interval_ms=3_600_000)  # a retrain may take long
        await consumer.start()
        seen = 0
        try:
            while not stop.is_set() and (max_requests is None or seen < max_requests):
                batch = await consumer.getmany(timeout_ms=500, max_records=1)
                for tp, records in batch.items():
                    for record in records:
                        await self._one(record)
                        await consumer.commit({tp: record.offset + 1})
                        seen += 1
        finally:
            await consumer.stop()

    async def _one(self, record) -> None:
        try:
            request = json.loads(record.value)
            if not isinstance(request, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            log.warning("retrain request at offset %d is not valid JSON (%s); skipped", record.offset, exc)
            return
        skip = self._skip_reason(request, record.timestamp)
        if skip:
            log.info("retrain request %s skipped: %s", request.get("id"), skip)
            return
        try:
            await self.handle(request)
        except CandleflowError as exc:  # bad data or config for this request: log it, keep serving others
            log.error("retrain request %s failed: %s", request.get("id"), exc)
            self.last_finished = time.time()
