"""A running worker under hostile input, and its security defaults.

One worker (module fixture) gets a few hundred hostile messages, generated with a fixed seed, between
real candles: every hostile message ends in dead-letters with a reason, the worker stays up, and its
counters add up. The same worker runs with an admin token and a database password in its environment
and at debug log level: neither may appear in its output, and it listens on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
import uuid

import pytest
from aiokafka import AIOKafkaProducer

from core.signals import prediction_id
from schemas import AvroCodec, LocalSchemaStore, MultiCodec
from schemas.wire import frame
from streams.broker import free_port
from streams.dead_letters import MAX_DEAD_PAYLOAD
from core.errors import InvalidInput
from core.candle_messages import decode_candle_message
from core.settings import Secret, Settings
from core.topics import ensure_topics, topic_specs
from streams.worker_process import WorkerProcess
from tests.integration.test_candle_pipeline import collect, publish, real_candles

pytestmark = pytest.mark.integration

SEED = 20261122
N_HOSTILE = 300
BIG = 2 * 1024 * 1024  # bytes: over the clients' default 1 MiB request and fetch sizes
STORE = LocalSchemaStore()
CODEC = MultiCodec(["Candle", "CandleBatch"], STORE)
VALID = {"symbol": "EVIL", "timeframe": "5m", "open_time": 1_515_560_100_000, "open": 0.0984, "high": 0.0995,
         "low": 0.0982, "close": 0.0994, "volume": 1820.5}
BAD_FIELDS = [("open", float("nan")), ("high", float("inf")), ("close", -1.0), ("low", 0.0), ("volume", -5.0),
              ("high", 0.01), ("low", 0.5), ("open_time", 1_515_560_100_001), ("timeframe", "1m"), ("timeframe", "7m"),
              ("symbol", ""), ("symbol", "   "), ("symbol", "S" * 65), ("symbol", "\x00" * 100),
              ("symbol", "EVIL BTC"), ("symbol", "EVIL|5m"), ("trades", -3),
              ("spread_bps", float("-inf")), ("quote_volume", -0.5), ("open_time", -300_000),
              ("open_time", 4_102_444_800_000)]  # 2100: it would move its series past every real candle


def hostile_messages(rng: random.Random) -> list[tuple[bytes, bytes]]:
    """(key, value) pairs, none of which holds a usable candle."""
    others = {name: AvroCodec(name, STORE) for name in ("Signal", "DeadLetter")}
    signal = {"id": "s", "prediction_id": "p", "symbol": "X", "timeframe": "5m", "open_time": 0, "direction": "UP",
              "confidence": 0.5, "entry_price": 1.0, "horizon": 1, "model_version": "v"}
    dead = {"reason": "r", "error_type": "decode", "source_topic": "t", "partition": 0, "offset": 0, "key": None,
            "payload": b"", "failed_at": 0}

    def bad_record() -> dict:
        field, value = rng.choice(BAD_FIELDS)
        return {**VALID, "open_time": VALID["open_time"] + 300_000 * rng.randrange(1000), field: value}

    makers = [
        lambda: rng.randbytes(rng.randrange(0, 200)),
        lambda: frame(CODEC.codecs["Candle"].schema_id) + rng.randbytes(rng.randrange(0, 80)),
        lambda: frame(CODEC.codecs["CandleBatch"].schema_id) + rng.randbytes(rng.randrange(0, 80)),
        lambda: frame(rng.randrange(2**32)) + rng.randbytes(20),
        lambda: others["Signal"].encode(signal),
        lambda: others["DeadLetter"].encode(dead),
        lambda: CODEC.encode("Candle", bad_record()),
        lambda: CODEC.encode("CandleBatch", {"candles": [bad_record() for _ in range(rng.randrange(1, 4))]}),
        lambda: CODEC.encode("Candle", bad_record())[: rng.randrange(1, 40)],
        lambda: CODEC.encode("Candle", bad_record()) + rng.randbytes(rng.randrange(1, 10)),
    ]
    out = [(rng.choice([b"EVIL", b"", rng.randbytes(8)]), rng.choice(makers)()) for _ in range(N_HOSTILE - 2)]
    out.append((b"EVIL", frame(CODEC.codecs["Candle"].schema_id) + rng.randbytes(BIG)))  # big noise
    out.append((b"EVIL", CODEC.encode("Candle", {**VALID, "symbol": "S" * BIG})))  # big, valid Avro, bad symbol
    # Just under the 1 MiB message limit: ~10,000 invalid candles in one CandleBatch, one dead letter for all
    out.append((b"EVIL", CODEC.encode("CandleBatch", {"candles": [bad_record() for _ in range(10_000)]})))
    return out


def refused_inputs(messages: list[tuple[bytes, bytes]]) -> int:
    """Inputs the pipeline must refuse (its ``dead_letters`` counter): each undecodable message, each
    invalid candle in a message. It writes one dead letter per message, whatever it held."""
    total = 0
    for _, value in messages:
        try:
            items = decode_candle_message(CODEC, value, "5m", latest_open_time=Settings().latest_open_time())
        except InvalidInput:
            total += 1
            continue
        assert all(isinstance(i, InvalidInput) for i in items), "a hostile message holds a valid candle"
        total += len(items)
    return total


async def send_all(settings: Settings, messages: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.broker.bootstrap, max_request_size=4 * BIG)
    await producer.start()
    try:
        futures = [await producer.send(settings.candle_topic("5m"), value, key=key or None) for key, value in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


@pytest.fixture(scope="module")
def secret_worker(broker, trained_model, tmp_path_factory):
    """A worker with an admin token and a database password in its environment, logging at debug level."""
    tmp = tmp_path_factory.mktemp("hostile")
    token, password = f"tok-{uuid.uuid4().hex}", f"pw-{uuid.uuid4().hex}"
    settings = Settings(broker={"bootstrap": broker.bootstrap}, app_id=f"cf-hostile-{uuid.uuid4().hex[:8]}",
                        topic_prefix=f"h{uuid.uuid4().hex[:8]}", partitions=4, timeframes=("5m",), model_dir=trained_model, data_dir=tmp / "state",
                        web={"port": free_port(), "admin_token": Secret(token)}, signal_threshold=0.05, log_level="debug")
    ensure_topics(settings.broker.bootstrap, topic_specs(settings))
    env = {"CANDLEFLOW_POSTGRES_DSN": f"postgresql://candleflow:{password}@127.0.0.1:5432/candleflow",
           "KAFKA_SASL_PASSWORD": password}
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        worker = WorkerProcess(settings, tmp / "worker.log").start()
    worker.wait_ready()
    yield worker, {"admin token": token, "database password": password}
    worker.process.kill()
    worker.process.wait()


def test_hostile_messages_all_dead_lettered_worker_stays_up(secret_worker):
    worker, _ = secret_worker
    settings = worker.settings
    rng = random.Random(SEED)
    hostile = hostile_messages(rng)
    n_refused, n_dead = refused_inputs(hostile), len(hostile)
    candles = real_candles(40)
    half = len(candles) // 2
    asyncio.run(publish(settings, candles[:half]))
    asyncio.run(send_all(settings, hostile))
    asyncio.run(publish(settings, candles[half:]))  # valid candles after the storm are still scored

    got = asyncio.run(collect(settings, lambda r: len(r["predictions"]) >= len(candles) and len(r["dead-letters"]) >= n_dead, 120))
    version = worker.health()["model_version"]
    assert {p["id"] for p in got["predictions"]} == {prediction_id(c.symbol, c.timeframe, c.open_time, version) for c in candles}
    assert len(got["predictions"]) == len(candles)
    dead = got["dead-letters"]
    assert len(dead) == n_dead, f"{len(dead)} dead letters for {len(hostile)} messages holding {n_refused} bad inputs"
    assert sum(len(d["payload"]) for d in dead) <= sum(min(len(v), MAX_DEAD_PAYLOAD) for _, v in hostile)  # each payload once
    for d in dead:
        assert d["reason"].strip() and "\n" not in d["reason"] and len(d["reason"]) <= 1000, d["reason"][:200]
        assert d["error_type"] in ("decode", "validation", "out_of_order")
        assert d["source_topic"] == settings.candle_topic("5m") and d["offset"] >= 0
        assert len(d["payload"]) <= MAX_DEAD_PAYLOAD
    big = [d for d in dead if len(d["payload"]) == MAX_DEAD_PAYLOAD]
    assert len(big) == 3, "the two 2 MiB messages and the 10,000-candle batch are dead-lettered with a truncated copy"
    [batch] = [d for d in big if d["reason"].startswith("10000 candles refused: ")]
    assert len(batch["reason"]) <= 1000
    kinds = {d["error_type"] for d in dead}
    assert {"decode", "validation"} <= kinds

    health = worker.health()
    assert health["ready"] and worker.process.poll() is None
    stats = worker.get("/stats")
    assert stats["dead_letters"] == n_refused and stats["predictions"] == len(candles)
    assert stats["candles"] == len(candles) + n_refused  # every input counted once, as a candle or as refused


def listening_sockets(pid: int) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket in LISTEN state that process ``pid`` holds."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = []
    for table, width in (("tcp", 8), ("tcp6", 32)):
        with open(f"/proc/{pid}/net/{table}") as f:
            next(f)
            for line in f:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and inode in inodes:  # 0A: LISTEN
                    address, port = local.split(":")
                    found.append((_address(address, width), int(port, 16)))
    return found


def _address(hexaddr: str, width: int) -> str:
    raw = bytes.fromhex(hexaddr)
    if width == 8:
        return ".".join(str(b) for b in reversed(raw))
    words = [raw[i:i + 4][::-1] for i in range(0, 16, 4)]  # /proc prints each 32-bit word in host order
    import ipaddress

    return str(ipaddress.IPv6Address(b"".join(words)))


def test_nothing_listens_beyond_loopback_by_default(secret_worker):
    worker, _ = secret_worker
    sockets = listening_sockets(worker.process.pid)
    assert (worker.settings.web.host, worker.settings.web.port) in sockets
    assert all(address in ("127.0.0.1", "::1") for address, _ in sockets), sockets
    assert Settings().web.host == "127.0.0.1" and Settings.from_env({}).web.host == "127.0.0.1"


def test_secrets_never_appear_in_output(secret_worker):
    worker, secrets = secret_worker
    # Exercise the views too: their bodies must not carry the secrets either.
    bodies = [repr(worker.get(path)) for path in ("/health", "/stats", "/models", "/signals/latest", "/dashboard/data")]
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and not worker.log_path.stat().st_size:
        time.sleep(0.1)
    log = worker.log_path.read_text(errors="replace")
    assert "DEBUG" in log, "the worker did not log at debug level: the check below would prove little"
    for name, secret in secrets.items():
        assert secret not in log, f"the {name} appears in the worker's log"
        assert all(secret not in body for body in bodies), f"the {name} appears in a web view"
    assert repr(worker.settings).find(secrets["admin token"]) == -1
