"""A/B promotion, run beside the retrain worker: one judge for the whole stream, acting through the registry.

It reads ``outcomes`` (its own consumer group), and while the registry has a candidate for the model
name it feeds every outcome of the candidate and the active version to a judge: a
:class:`learning.promotion.PairedJudge` when the workers run the candidate in shadow on every candle
(``CANDLEFLOW_AB_MODE=shadow``, the default), a :class:`learning.promotion.PromotionJudge` when they
split the symbols between the versions. A ``promote`` makes the candidate active, a ``rollback``
retires it; either way the decision's numbers are the deployment note, and the registry publishes the
change on ``model-events`` for every worker. One judge sees every partition's outcomes, which the
per-partition outcome agents cannot. A new consumer group starts from the oldest outcome: outcomes of
the two versions already on the topic are evidence too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from learning.promotion import PairedJudge, PromotionJudge
from schemas import MultiCodec, store_from_url, unbatch
from streams.errors import InvalidInput
from streams.kafka_security import aiokafka_security
from streams.settings import Settings

__all__ = ["PromotionWorker"]

log = logging.getLogger(__name__)


class PromotionWorker:
    def __init__(self, settings: Settings, registry: Any, name: str, *, group_id: str = "candleflow-promotion",
                 refresh_s: float = 5.0, **judge_options: Any) -> None:
        self.settings, self.registry, self.name = settings, registry, name
        self.group_id, self.refresh_s, self.judge_options = group_id, refresh_s, judge_options
        self.codec = MultiCodec(["Outcome", "OutcomeBatch"], store_from_url(settings.schema_registry_url or None))
        self.judge: PromotionJudge | None = None
        self.decisions: list[dict[str, Any]] = []

    async def _refresh(self) -> None:
        """Start, keep or drop the experiment to match the registry's active and candidate versions."""
        active, candidate = await self.registry.active(self.name), await self.registry.candidate(self.name)
        pair = (active["version"], candidate["version"]) if active and candidate else None
        if pair is None:
            self.judge = None
        elif self.judge is None or (self.judge.active, self.judge.candidate) != pair:
            # Shadow (the workers' default): both versions score every candle, judged pair by pair.
            judge = PairedJudge if self.settings.ab_mode == "shadow" else PromotionJudge
            self.judge = judge(*pair, **self.judge_options)
            log.info("A/B experiment (%s): %s (active) against %s (candidate)", self.settings.ab_mode, *pair)

    async def decide(self, decision: dict[str, Any]) -> None:
        note = json.dumps({k: v for k, v in decision.items() if k != "reason"} | {"why": decision.get("reason")},
                          default=str)
        if decision["decision"] == "promote":
            await self.registry.activate(decision["candidate"], note=f"A/B promote: {note}")
        else:
            await self.registry.retire(decision["candidate"], note=f"A/B rollback: {note}")
        self.decisions.append(decision)
        log.warning("A/B %s of %s: %s", decision["decision"], decision["candidate"], note)
        self.judge = None

    async def run(self, stop: asyncio.Event | None = None, max_decisions: int | None = None) -> None:
        from aiokafka import AIOKafkaConsumer

        stop = stop or asyncio.Event()
        consumer = AIOKafkaConsumer(self.settings.topic("outcomes"), bootstrap_servers=self.settings.broker, **aiokafka_security(self.settings),
                                    group_id=self.group_id, auto_offset_reset="earliest", enable_auto_commit=True,
                                    session_timeout_ms=6_000, heartbeat_interval_ms=1_500)
        await consumer.start()
        refreshed = 0.0
        try:
            while not stop.is_set() and (max_decisions is None or len(self.decisions) < max_decisions):
                if time.monotonic() - refreshed > self.refresh_s:
                    await self._refresh()
                    refreshed = time.monotonic()
                batch = await consumer.getmany(timeout_ms=500)
                if batch and self.judge is None:  # an experiment may have begun since the last look
                    await self._refresh()
                    refreshed = time.monotonic()
                for records in batch.values():
                    for record in records:
                        if self.judge is None:
                            break
                        try:
                            outcomes = [o for _, o in unbatch(*self.codec.decode(record.value))]
                        except InvalidInput:
                            continue
                        for outcome in outcomes:
                            decision = self.judge.update(outcome) if self.judge is not None else None
                            if decision and decision["decision"] in ("promote", "rollback"):
                                await self.decide(decision)
        finally:
            await consumer.stop()
