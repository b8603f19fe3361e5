"""A trading engine's results count: TRADE outcomes published for signals become P&L and hit rate per
model version on the worker that owns the symbols, from the Python API and from `candleflow produce-outcomes`."""

from __future__ import annotations

import asyncio
import json

import pytest

from core.topics import labels_only
from learning.trades import trade_outcome
from schemas import AvroCodec, MultiCodec, schema_store, unbatch
from streams.trade_producer import TradeProducer
from tests.integration.test_candle_pipeline import all_out, collect, publish, real_candles
from tests.candleflow.test_cli import run_cli
from tests.integration.test_schema_registry_api import read_all
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


def trade_for(signal: dict, pnl: float) -> dict:
    entry = signal["entry_price"]
    return {"signal_id": signal["id"], "symbol": signal["symbol"], "timeframe": signal["timeframe"],
            "open_time": signal["open_time"], "horizon": signal["horizon"], "model_version": signal["model_version"],
            "entry_price": entry, "exit_price": entry * (1 + pnl / 100), "pnl": pnl, "status": "closed"}


def test_trade_results_become_pnl_and_hit_rate_per_version(app_settings, worker_factory, tmp_path):
    settings = app_settings()
    worker = worker_factory(settings)
    candles = real_candles(80)
    asyncio.run(publish(settings, candles))
    got = asyncio.run(collect(settings, all_out(len(candles), 0, settings.signal_threshold)))
    signals = sorted(got["signals"], key=lambda s: s["id"])[:13]
    assert len(signals) == 13
    version = signals[0]["model_version"]
    pnls = [1.0, -0.5, 2.0, -1.0, 0.5, 0.25]

    async def send_api() -> None:
        async with TradeProducer(settings) as producer:
            for signal, pnl in zip(signals[:6], pnls):
                await producer.send(trade_for(signal, pnl))

    asyncio.run(send_api())
    asyncio.run(send_as_batch(settings, trade_for(signals[12], 0.3)))  # the batch form counts as well
    lines = [json.dumps(trade_for(s, -0.1)) for s in signals[6:12]] + ["not json", json.dumps({"symbol": "X"})]
    path = tmp_path / "trades.jsonl"
    path.write_text("\n".join(lines) + "\n")
    done = run_cli("produce-outcomes", str(path), env={"CANDLEFLOW_BROKER": settings.broker.bootstrap,
                                                       "CANDLEFLOW_TOPIC_PREFIX": settings.topic_prefix})
    assert done.returncode == 0, done.stderr
    assert "published 6 trade results (2 invalid lines skipped)" in done.stderr and "line 7 skipped: not JSON" in done.stderr

    def counted():
        rows = [r for r in worker.get("/models")["trades"] if r["model_version"] == version]
        return rows and rows[0]["trades"] == 13 and rows[0]

    row = wait_for(counted, what="13 trades counted")
    shown = [r for r in worker.get("/dashboard/data")["trades"] if r["model_version"] == version]
    assert shown and shown[0]["trades"] == 13 and shown[0]["pnl_total"] == row["pnl_total"]  # the dashboard too
    assert row["wins"] == 5 and row["pnl_total"] == pytest.approx(sum(pnls) - 0.6 + 0.3)
    assert row["hit_rate"] == pytest.approx(5 / 13, abs=1e-4)
    # Trade verdicts are kept apart from the labels' accuracy.
    assert all(a["outcomes"] <= len(candles) for a in worker.get("/models")["accuracy"])


async def send_as_batch(settings, result: dict) -> None:
    """One trade result as a one-outcome OutcomeBatch record, as a trading engine batching its results may send."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=settings.broker.bootstrap, acks="all")
    await producer.start()
    try:
        codec = AvroCodec("OutcomeBatch", schema_store(settings))
        await producer.send_and_wait(settings.topic("outcomes"), codec.encode({"outcomes": [trade_outcome(result)]}),
                                     key=result["symbol"].encode())
    finally:
        await producer.stop()


def test_the_workers_label_batches_say_so_and_trades_do_not(app_settings, worker_factory):
    """The trades agent passes a record by undecoded when its header says it holds labels only
    (core/topics.py): every OutcomeBatch a worker writes has it, and nothing else does."""
    settings = app_settings()
    worker_factory(settings)
    candles = real_candles(40)
    asyncio.run(publish(settings, candles))
    asyncio.run(collect(settings, all_out(len(candles), 0, settings.signal_threshold)))
    codec = MultiCodec(["Outcome", "OutcomeBatch"], schema_store(settings))
    signal = {"id": "s-1", "symbol": candles[0].symbol, "timeframe": candles[0].timeframe, "open_time": candles[0].open_time,
              "horizon": 1, "model_version": "v", "entry_price": 1.0}
    asyncio.run(send_as_batch(settings, trade_for(signal, 0.5)))
    messages = read_all(settings, settings.topic("outcomes"), lambda ms: sum(not labels_only(m.headers()) for m in ms) >= 1)
    by_header: dict[bool, list] = {True: [], False: []}
    for m in messages:
        name, record = codec.decode(m.value())
        by_header[labels_only(m.headers())] += [(name, o["source"]) for _, o in unbatch(name, record)]
    assert by_header[True] and {item for item in by_header[True]} == {("OutcomeBatch", "LABEL")}
    assert by_header[False] == [("OutcomeBatch", "TRADE")]


def busiest_symbols_signals(settings, candles) -> tuple[str, list[dict]]:
    """Publish ``candles``; the symbol with the most signals, and its signals (at least 100), oldest first."""
    asyncio.run(publish(settings, candles))
    got = asyncio.run(collect(settings, all_out(len(candles), 0, settings.signal_threshold), timeout_s=180))
    by_symbol: dict[str, list[dict]] = {}
    for s in got["signals"]:
        by_symbol.setdefault(s["symbol"], []).append(s)
    symbol, signals = max(by_symbol.items(), key=lambda kv: len(kv[1]))
    assert len(signals) >= 100, {k: len(v) for k, v in by_symbol.items()}
    return symbol, sorted(signals, key=lambda s: s["open_time"])


def test_losing_trades_make_the_worker_ask_for_a_retrain(app_settings, worker_factory):
    """A trading engine that loses on a version's signals: the worker's trade-loss watch (learning.drift.
    TradeLosses, 100 trades, one-sided t test) publishes a retrain request naming the trades as the reason."""
    from tests.integration.test_live_drift import first_request

    settings = app_settings()
    worker = worker_factory(settings)
    candles = real_candles(300)  # 300 labels per symbol: the version's watch exists (it needs 200)
    _, signals = busiest_symbols_signals(settings, candles)
    watched = lambda: any(w.get("trade_window") and w["model_version"] == signals[0]["model_version"]  # noqa: E731
                          for w in worker.get("/models")["drift"]["watches"])
    wait_for(watched, what="the version's drift watch")

    async def send() -> None:
        async with TradeProducer(settings) as producer:
            for i, signal in enumerate(signals[:100]):
                await producer.send(trade_for(signal, 0.3 if i % 3 == 0 else -0.5))

    asyncio.run(send())
    request = asyncio.run(first_request(settings, 60))
    assert request is not None and "trades_losing" in request["reasons"], request
    evidence = request["evidence"]["trades_losing"]
    assert evidence["trades"] == 100 and evidence["mean_pnl"] < 0 and request["model_version"] == signals[0]["model_version"]
    assert worker.get("/ready")["ready"]


def test_the_adaptive_threshold_judged_by_trades_turns_conservative(app_settings, worker_factory):
    """CANDLEFLOW_ADAPTIVE_THRESHOLD_SOURCE=trades: 100 losing trades on one partition's signals, and that
    partition's next candle raises its version's threshold (an event on signal-thresholds)."""
    from tests.integration.test_live_drift import first_request

    settings = app_settings(adaptive_threshold=True, adaptive_threshold_source="trades", signal_threshold=0.05,
                            signal_threshold_max=0.3)
    worker = worker_factory(settings)
    more = real_candles(302)
    candles = [c for c in more if c.open_time < max(x.open_time for x in more) - 300_000]  # 300 per symbol
    symbol, signals = busiest_symbols_signals(settings, candles)

    async def send() -> None:
        async with TradeProducer(settings) as producer:
            for i, signal in enumerate(signals[:100]):
                await producer.send(trade_for(signal, 0.2 if i % 4 == 0 else -0.3))

    asyncio.run(send())
    version = signals[0]["model_version"]
    wait_for(lambda: any(r["model_version"] == version and r["trades"] == 100 for r in worker.get("/models")["trades"]),
             what="the 100 trades counted")  # queued as verdicts before the clock moves on
    asyncio.run(publish(settings, [c for c in more if c.symbol == symbol and c not in candles]))
    event = asyncio.run(first_request(settings, 60, topic="signal-thresholds"))
    assert event is not None and event["mode"] == "conservative" and event["to"] > event["from"], event
    assert event["hit_rate"] == 0.25 and event["model_version"] == version
