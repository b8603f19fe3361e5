"""The bench's own Kafka I/O, kept light so it disturbs the processes it measures as little as possible:
librdkafka (confluent-kafka) for feeding inputs and reading outputs, no Python per message in the
fetch path, values kept as bytes and decoded only after a regime is over (off the clock).
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

__all__ = ["Feeder", "Reader", "proc_cpu_s", "proc_peak_rss_mb"]


class Feeder:
    """Produces pre-encoded messages. Keys go to the partition Kafka's Java client and aiokafka pick
    (murmur2), like ``CandleProducer``; CandleBatch messages name their partition explicitly."""

    def __init__(self, broker: str):
        self.producer = Producer({"bootstrap.servers": broker, "linger.ms": 0, "acks": 1,
                                  "partitioner": "murmur2_random", "queue.buffering.max.messages": 1_000_000,
                                  "queue.buffering.max.kbytes": 1_048_576, "batch.size": 1_000_000,
                                  "log_level": 3})
        self.last_ts_ms = 0

    def _on_last(self, err, msg) -> None:
        if err is None:
            self.last_ts_ms = max(self.last_ts_ms, msg.timestamp()[1])

    def send(self, topic: str, key: bytes, value: bytes, partition: int | None = None, last: bool = False) -> None:
        kwargs = {"on_delivery": self._on_last} if last else {}
        if partition is not None:
            kwargs["partition"] = partition
        while True:
            try:
                self.producer.produce(topic, value, key, **kwargs)
                return
            except BufferError:
                self.producer.poll(0.005)

    def poll(self) -> None:
        self.producer.poll(0)

    def flush(self) -> None:
        self.producer.flush(30)


class Reader:
    """Reads every partition of ``topics`` from the beginning in a thread; per topic a list of
    (receive time s, Kafka timestamp ms, value or None). ``keep_values``: topics whose values are kept."""

    def __init__(self, broker: str, topics: list[str], partitions: int, keep_values: set[str], group: str,
                 explode: Callable[[bytes], list[Any]] | None = None, explode_topics: frozenset[str] = frozenset()):
        # explode: a batch message's value -> its records (one entry each), for the topics in explode_topics
        self.explode, self.explode_topics = explode, explode_topics
        self.consumer = Consumer({"bootstrap.servers": broker, "group.id": group, "enable.auto.commit": False,
                                  "fetch.wait.max.ms": 1, "fetch.min.bytes": 1, "log_level": 3,
                                  "enable.partition.eof": False})
        self.consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t in topics for p in range(partitions)])
        self.records: dict[str, list[tuple[float, int, bytes | None]]] = {t: [] for t in topics}
        self.keep = keep_values
        self.cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True, name="bench-reader")
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop:
                # consume(n, timeout) waits for n messages or the whole timeout: poll for the first
                # message, then take whatever else is already fetched without waiting.
                first = self.consumer.poll(0.05)
                if first is None:
                    continue
                messages = [first] + self.consumer.consume(num_messages=10_000, timeout=0)
                now = time.time()
                with self.cond:
                    for m in messages:
                        if m.error():
                            continue
                        topic = m.topic()
                        if self.explode is not None and topic in self.explode_topics:
                            ts = m.timestamp()[1]
                            self.records[topic].extend((now, ts, r) for r in self.explode(m.value()))
                        else:
                            self.records[topic].append((now, m.timestamp()[1], m.value() if topic in self.keep else None))
                    self.cond.notify_all()
        finally:
            self.consumer.close()

    def count(self, topic: str) -> int:
        return len(self.records[topic])

    def wait_for(self, condition: Callable[[], bool], timeout_s: float, alive: Callable[[], bool] = lambda: True) -> bool:
        """Block until ``condition()`` holds (checked whenever messages arrive); False on timeout or a dead process."""
        deadline = time.monotonic() + timeout_s
        with self.cond:
            while not condition():
                left = deadline - time.monotonic()
                if left <= 0 or not alive():
                    return False
                self.cond.wait(min(left, 0.5))
        return True

    def stop(self) -> None:
        self._stop = True
        self._thread.join(5)


def proc_peak_rss_mb(pid: int) -> float | None:
    """Peak resident set size (VmHWM) of a process, MB; psutil is not installed here, /proc is."""
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def proc_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process (all its threads)."""
    import os

    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None
