"""Replay outputs: a JSON-lines file sorted in bounded memory, whatever order the records came in."""

from __future__ import annotations

import asyncio
import json
import random

import pytest

from core.errors import ConfigError
from candleflow.replay.output import JsonlFile, KeptRecords, Tee, record_line


def prediction(i: int, symbol: str) -> dict:
    return {"id": f"p-{symbol}-{i}", "symbol": symbol, "timeframe": "5m", "open_time": i * 300_000,
            "prob_up": 0.5 + i / 1e4, "features": [float("nan"), 1.0]}


def signal(i: int, symbol: str) -> dict:
    return {"id": f"s-{symbol}-{i}", "symbol": symbol, "timeframe": "5m", "open_time": i * 300_000, "direction": "UP"}


def shuffled_steps(seed: int) -> list[tuple[str, list[dict]]]:
    """Records in steps as a replay makes them, the partitions interleaved at random."""
    rng = random.Random(seed)
    symbols = ["ETH-BTC", "LTC-BTC", "ETC-BTC"]
    per_symbol = [[("prediction", prediction(i, s)) for i in range(300)] + [("signal", signal(i, s)) for i in range(0, 300, 7)]
                  for s in symbols]
    steps = []
    while any(per_symbol):
        source = rng.choice([p for p in per_symbol if p])
        n = rng.randint(1, 40)
        take, source[:n] = source[:n], []
        for kind in ("prediction", "signal"):
            steps.append((kind, [r for k, r in take if k == kind]))
    return steps


def write(path, steps, run_lines: int) -> None:
    output = JsonlFile(path, run_lines=run_lines)
    for kind, records in steps:
        output.add(kind, records)
    asyncio.run(output.close())


def test_the_file_is_sorted_and_the_same_whatever_the_interleaving_and_run_size(tmp_path):
    write(tmp_path / "a.jsonl", shuffled_steps(1), run_lines=50)  # many spilled runs, merged
    write(tmp_path / "b.jsonl", shuffled_steps(2), run_lines=1_000_000)  # all in memory
    a, b = (tmp_path / "a.jsonl").read_bytes(), (tmp_path / "b.jsonl").read_bytes()
    assert a == b
    lines = [json.loads(line) for line in a.decode().splitlines()]
    kinds = [line["kind"] for line in lines]
    assert kinds == sorted(kinds, key=("prediction", "signal").index) and len(lines) == 3 * 300 + 3 * 43
    predictions = [(p["open_time"], p["symbol"]) for p in lines if p["kind"] == "prediction"]
    assert predictions == sorted(predictions)
    assert lines[0]["features"] == [None, 1.0], "NaN is written as null: the file is valid JSON"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jsonl", "b.jsonl"], "no run file is left behind"


def test_an_unfinished_replay_leaves_no_file_and_no_runs(tmp_path):
    output = JsonlFile(tmp_path / "out.jsonl", run_lines=10)
    for start in range(0, 35, 10):
        output.add("prediction", [prediction(i, "ETH-BTC") for i in range(start, min(start + 10, 35))])
    assert len(list(tmp_path.iterdir())) == 3  # the spilled runs
    asyncio.run(output.close(complete=False))
    assert list(tmp_path.iterdir()) == []


def test_a_file_in_a_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="is not a directory"):
        JsonlFile(tmp_path / "nowhere" / "out.jsonl")


def test_tee_gives_every_record_to_each_output(tmp_path):
    kept, path = KeptRecords(), tmp_path / "out.jsonl"
    tee = Tee(kept, JsonlFile(path))
    tee.add("prediction", [prediction(2, "LTC-BTC"), prediction(1, "ETH-BTC")])
    tee.add("signal", [signal(1, "ETH-BTC")])
    asyncio.run(tee.close())
    assert [p["id"] for p in kept.predictions] == ["p-LTC-BTC-2", "p-ETH-BTC-1"] and len(kept.signals) == 1
    assert path.read_text().splitlines() == [record_line("prediction", prediction(1, "ETH-BTC")),
                                             record_line("prediction", prediction(2, "LTC-BTC")),
                                             record_line("signal", signal(1, "ETH-BTC"))]
