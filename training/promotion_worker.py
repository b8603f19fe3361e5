"""A/B promotion, run beside the retrain worker: one judge for the whole stream, acting through the registry.

It reads ``outcomes`` (every partition, no consumer group), and while the registry has a candidate for the
model name it feeds every outcome of the candidate and the active version to a judge: a
:class:`learning.promotion.PairedJudge` when the workers run the candidate in shadow on every candle
(``CANDLEFLOW_AB_MODE=shadow``, the default), a :class:`learning.promotion.PromotionJudge` when they
split the symbols between the versions. A ``promote`` makes the candidate active, a ``rollback``
retires it; either way the decision's numbers are the deployment note, and the registry publishes the
change on ``model-events`` for every worker. One judge sees every partition's outcomes, which the
per-partition outcome agents cannot.

The judge's counts are kept nowhere but in the outcomes topic: when an experiment starts — a candidate
appears, or this worker (re)starts while one runs — it reads the outcomes again from the moment the
candidate became one (its ``updated_at`` in the registry, less ``REWIND_MARGIN_S`` for clock skew). A
restarted judge therefore counts exactly what the one before it had counted, and goes on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from learning.promotion import PairedJudge, PromotionJudge
from schemas import MultiCodec, schema_store, unbatch
from kafka_io.client_internals import refresh_metadata
from kafka_io.consumer import offsets_at_time
from core.errors import InvalidInput
from kafka_io.security import aiokafka_security
from core.settings import Settings
from core.timestamps import parse_time

__all__ = ["PromotionWorker"]

log = logging.getLogger(__name__)

REWIND_MARGIN_S = 60.0  # the registry's clock (PostgreSQL) against the producers' record timestamps


class PromotionWorker:
    def __init__(self, settings: Settings, registry: Any, name: str, *, refresh_s: float = 5.0, **judge_options: Any) -> None:
        self.settings, self.registry, self.name = settings, registry, name
        self.refresh_s, self.judge_options = refresh_s, judge_options
        self.consumer: Any = None
        self.codec = MultiCodec(["Outcome", "OutcomeBatch"], schema_store(settings))
        self.judge: PromotionJudge | None = None
        self.decisions: list[dict[str, Any]] = []

    async def _refresh(self) -> bool:
        """Start, keep or drop the experiment to match the registry's active and candidate versions; True
        when one started (the consumer is rewound to its beginning)."""
        active, candidate = await self.registry.active(self.name), await self.registry.candidate(self.name)
        pair = (active["version"], candidate["version"]) if active and candidate else None
        if pair is None:
            self.judge = None
            return False
        if self.judge is None or (self.judge.active, self.judge.candidate) != pair:
            # Shadow (the workers' default): both versions score every candle, judged pair by pair.
            judge = PairedJudge if self.settings.ab_mode == "shadow" else PromotionJudge
            self.judge = judge(*pair, **self.judge_options)
            log.info("A/B experiment (%s): %s (active) against %s (candidate)", self.settings.ab_mode, *pair)
            await self._rewind(candidate.get("updated_at"))
            return True
        return False

    async def _rewind(self, since: str | None) -> None:
        """Read every partition of ``outcomes`` again from ``since`` (ISO time; None: from the start)."""
        tps = sorted(self.consumer.assignment()) if self.consumer is not None else []
        if not tps:
            return
        if since is None:
            await self.consumer.seek_to_beginning(*tps)
            return
        # The ends are taken before the lookup, and sought to as numbers: a lazy seek_to_end would resolve
        # "the end" later and skip whatever outcomes were written in between.
        ends = await self.consumer.end_offsets(tps)
        found = await offsets_at_time(self.consumer, tps, parse_time(since) - int(REWIND_MARGIN_S * 1000))
        for tp in tps:
            self.consumer.seek(tp, found[tp] if found[tp] is not None else ends[tp])  # None: nothing since then

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
        topic = self.settings.topic("outcomes")
        consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.broker.bootstrap, **aiokafka_security(self.settings),
                                    group_id=None, enable_auto_commit=False, auto_offset_reset="latest")
        await consumer.start()
        await _assign_all(consumer, topic)
        self.consumer = consumer  # an experiment's start rewinds it (_rewind)
        refreshed = 0.0
        try:
            while not stop.is_set() and (max_decisions is None or len(self.decisions) < max_decisions):
                if time.monotonic() - refreshed > self.refresh_s:
                    if not consumer.assignment():  # the topic did not exist yet
                        await _assign_all(consumer, topic)
                        if consumer.assignment():
                            # Assigned at its end: an experiment that began before is read again from its start.
                            self.judge = None
                    await self._refresh()
                    refreshed = time.monotonic()
                batch = await consumer.getmany(timeout_ms=500)
                if batch and self.judge is None:  # an experiment may have begun since the last look
                    refreshed = time.monotonic()
                    if await self._refresh():
                        continue  # rewound: this batch comes again
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
            self.consumer = None
            await consumer.stop()


async def _assign_all(consumer: Any, topic: str) -> None:
    from aiokafka import TopicPartition

    if not consumer.partitions_for_topic(topic):
        await refresh_metadata(consumer)
    consumer.assign([TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())])
