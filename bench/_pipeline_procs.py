"""Reference processors of ``bench.pipeline``, each run in a child process of its own (so its peak RSS
and CPU time are its own): ``python -m bench._pipeline_procs raw|faust '<json config>'``.

- ``raw``: an aiokafka consume -> produce loop (all partitions assigned, no group); every message is
  forwarded with its key, partition and Kafka timestamp.
- ``faust``: a plain Faust agent that forwards each event with ``await topic.send()`` (its timestamp
  kept), with Candleflow's client settings (``streams.app.faust_app``: docs/platform.md's timeouts, the
  default fetch wait and producer linger, 1 s commit interval).

Both keep the input message's timestamp on the output, so the reader measures produce -> readable.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from typing import Any

__all__ = ["run_raw", "run_faust"]


async def _raw(cfg: dict[str, Any]) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=cfg["broker"], group_id=None, enable_auto_commit=False,
                                fetch_max_wait_ms=cfg.get("fetch_max_wait_ms", 25))
    producer = AIOKafkaProducer(bootstrap_servers=cfg["broker"], linger_ms=cfg.get("linger_ms", 2), acks=1,
                                max_batch_size=256 * 1024)
    await consumer.start()
    await producer.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    try:
        ids = consumer.partitions_for_topic(cfg["source"])
        if not ids:
            await consumer._client.force_metadata_update()  # aiokafka alone here: the raw row imports nothing of ours
            ids = consumer.partitions_for_topic(cfg["source"])
        tps = [TopicPartition(cfg["source"], p) for p in sorted(ids)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        print("READY", flush=True)
        sink, send = cfg["sink"], producer.send
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
            for tp, messages in batch.items():
                for m in messages:
                    await send(sink, m.value, key=m.key, partition=tp.partition, timestamp_ms=m.timestamp)
    finally:
        await consumer.stop()
        await producer.stop()


def run_raw(cfg: dict[str, Any]) -> None:
    asyncio.run(_raw(cfg))


def run_faust(cfg: dict[str, Any]) -> None:
    import faust

    from streams.app import faust_app
    from core.settings import Settings

    settings = Settings(broker={"bootstrap": cfg["broker"]}, app_id=cfg["app_id"], partitions=cfg["partitions"],
                        web={"port": cfg["web_port"]}, data_dir=cfg["data_dir"], store="memory://")
    app = faust_app(settings)  # Candleflow's exact client configuration
    source = app.topic(cfg["source"], key_serializer="raw", value_serializer="raw")
    sink = app.topic(cfg["sink"], key_serializer="raw", value_serializer="raw")

    @app.agent(source, name="forward")
    async def forward(stream: Any) -> None:
        async for event in stream.events():
            await sink.send(key=event.key, value=event.value, timestamp=event.message.timestamp)

    print("READY", flush=True)
    faust.Worker(app, loglevel="WARNING").execute_from_commandline()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    kind, cfg = argv[0], json.loads(argv[1])
    {"raw": run_raw, "faust": run_faust}[kind](cfg)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
