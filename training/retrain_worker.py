"""The retrain worker: ``retrain-requests`` in, a candidate version (or the reason why not) out.

One request at a time: the consumer (its own group, manual commits) hands each request to
:meth:`RetrainWorker.handle`, which trains in a thread (the event loop keeps the group heartbeat) on
the latest window of candles (:mod:`training.retrain_window`: by default the candle topics — what the workers
saw — plus any files and the PostgreSQL ``candles`` table; from where the request's drift watch saw the
change), evaluates the candidate and the active version on the *same* rows (:mod:`training.retrain_trial`)
and registers the candidate. It becomes the ``candidate`` (traffic share from config) when it is at least
as good on the configured metric (``tolerance`` allowed), otherwise the registry records a ``reject``
with the numbers. The offset is committed after each handled request, so a crash retrains at most once more.

Coalescing: a request that was produced while a retrain was running, or (unless it is manual) within
``cooldown_s`` after one finished, is acknowledged and skipped; the retrain that ran already used the
latest data. Its id is logged with the retrain it was folded into.

Its configuration is the settings' ``retrain`` section (:class:`core.settings_sections.RetrainConfig`,
``CANDLEFLOW_RETRAIN_*``), re-exported here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any

from core.errors import CandleflowError
from core.settings import RetrainConfig
from kafka_io.security import aiokafka_security
from training.retrain_trial import retrain_and_compare
from training.retrain_window import load_window
from training.scorer import load_scorer

__all__ = ["RetrainConfig", "RetrainWorker"]

log = logging.getLogger(__name__)


class RetrainWorker:
    """Consumes ``retrain-requests`` and retrains through ``registry`` (:class:`training.registry.ModelRegistry`),
    configured by ``config`` (default: the settings' section, ``settings.retrain``)."""

    def __init__(self, settings, config: RetrainConfig | None, registry) -> None:
        self.settings, self.config, self.registry = settings, config or settings.retrain, registry
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
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=self.settings.broker.bootstrap, group_id=self.config.group_id,
                                    **aiokafka_security(self.settings), enable_auto_commit=False, auto_offset_reset="earliest",
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
