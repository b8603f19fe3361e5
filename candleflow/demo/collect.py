"""What the demo reads back: the worker's predictions, signals and dead letters, counted until every candle
is accounted for (or the time is up), with latencies, directions, dead-letter reasons and member versions."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from core.settings import Settings
from kafka_io.consumer import read_topic

__all__ = ["collect_outputs"]


async def collect_outputs(settings: Settings, expected_predictions: int, expected_dead: int, timeout_s: float) -> dict[str, Any]:
    topics = [settings.topic("predictions"), settings.topic("signals"), settings.topic("dead-letters")]
    counts = {t: 0 for t in topics}
    directions: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    members: dict[str, str] = {}
    signal_latency: list[float] = []
    prediction_latency: list[float] = []
    done = asyncio.Event()

    async def consume() -> None:
        async for topic, record, received in read_topic(settings, topics):
            counts[topic] += 1
            if isinstance(record, dict):
                if topic == topics[0]:
                    members.update(record.get("model_versions") or {})
                elif topic == topics[1]:
                    directions[record["direction"]] += 1
                elif topic == topics[2]:
                    reasons[_reason(record)] += 1
            produced = record.get("candle_produced_at") if isinstance(record, dict) else None
            if produced:
                latency = received * 1000 - produced
                (signal_latency if topic == topics[1] else prediction_latency).append(latency)
            if counts[topics[0]] >= expected_predictions and counts[topics[2]] >= expected_dead:
                done.set()

    task = asyncio.create_task(consume())
    try:
        await asyncio.wait_for(done.wait(), timeout_s)
        await asyncio.sleep(0)
    except asyncio.TimeoutError:
        pass
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return {"predictions": counts[topics[0]], "signals": counts[topics[1]], "dead_letters": counts[topics[2]],
            "signal_latency": signal_latency, "prediction_latency": prediction_latency, "complete": done.is_set(),
            "directions": dict(directions), "reasons": dict(reasons), "members": members}


def _reason(dead_letter: dict[str, Any]) -> str:
    """A dead letter's kind and reason, on one line of the summary."""
    reason = " ".join(str(dead_letter.get("reason") or "unknown").split())
    return f"{dead_letter.get('error_type', 'validation')}: {reason if len(reason) <= 90 else reason[:87] + '...'}"
