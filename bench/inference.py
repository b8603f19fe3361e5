"""Model inference speed: ONNX Runtime, the compiled trees and native LightGBM, and the whole scoring step for 1,000 symbols.

Run: ``python -m bench.inference [--json] [--model-dir DIR] [--rounds N]``. Prints, from one run on real
features (the bundled candles, computed by the stream's own feature engine):

- ``lgbm_h1``: one horizon model, ONNX Runtime (1 intra-op thread) vs the native LightGBM Booster
  (``num_threads=1``), for one row and batches of 64 and 1,024: microseconds per row and the ratio;
- ``lgbm_all``: the five horizon models as the bundle runs them: one merged ONNX graph (one run), the
  trees compiled by lleaves (``compiled_*``: what a CPU worker serves, models/compiled_trees.py), and five
  native ``predict`` calls;
- ``input_buffer``: the merged graph fed a reused preallocated float32 buffer vs a fresh conversion
  (the measurement behind keeping the simpler code in ``models.direction``);
- ``scoring_1000``: the full default ensemble (LightGBM per horizon and the Mamba member in step mode, as
  the worker serves it) scoring 1,000 symbols' closing candles in one call, each symbol's recurrent state
  left by its previous 59 real candles; CPU per member; and the Mamba step against the 60-step window pass
  of the same weights, per candle (the whole live step with features and records is ``bench.compute``);
  the same with the trees on ONNX Runtime (``CANDLEFLOW_TREE_RUNTIME=onnx``) side by side;
- ``mamba``: the ONNX window model (offline use), only if ``models.mamba`` imports and a trained model exists.

The default bundle (and the native boosters, for the comparison) are trained on the first run into
``--model-dir`` (default ``var/bench/inference``) and reused afterwards. Every figure is the best of
``--rounds`` rounds: the machine is shared. ``--json`` prints one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from models.bundle import SEQUENCE_DIR
from models.direction import DirectionModel
from models.ensemble import STEPS
from models.loading import load_model, serving_threads
from models.mamba.numpy_step import NumpyMambaStep
from models.mamba.onnx_step import ONNX_STEP_PROVIDER
from models.mamba.windows import pad_windows
from models.metadata import BUNDLE_FILE, NATIVE_FILE, horizon_dir
from models.onnx_session import P_UP_OUTPUT
from core.candle_files import read_candle_file
from core.timing import best_seconds
from features import FeatureState
from streams.scoring import state_key
from training.dataset import BUNDLED, series_rows
from training.default_bundle import train_default_bundle
from training.train import HORIZONS, read_series

__all__ = ["GOALS", "main"]

REPO = Path(__file__).resolve().parents[1]
GOALS = {"onnx_one_row_us": 10.0, "speedup_batch_1": 3.0, "score_1000_ms": 20.0,  # issue 4; 15: with Mamba
         "step_vs_window": 20.0}
BATCHES = (1, 64, 1024)
N_SYMBOLS = 1000


def _prepare(model_dir: Path) -> dict[int, lgb.Booster]:
    """The default bundle in ``model_dir`` (what ``make demo`` trains: LightGBM per horizon and the Mamba
    member; trained if absent) and the native boosters of its horizons (their ``model.txt``)."""
    natives = [model_dir / horizon_dir(h) / NATIVE_FILE for h in HORIZONS]
    if not ((model_dir / BUNDLE_FILE).exists() and (model_dir / SEQUENCE_DIR).is_dir() and all(p.exists() for p in natives)):
        print(f"training the default bundle into {model_dir} (first run only, a few minutes) ...", file=sys.stderr)
        train_default_bundle(read_series(sorted(BUNDLED.glob("*.csv.gz"))), model_dir, HORIZONS)
    return {h: lgb.Booster(model_file=str(p)) for h, p in zip(HORIZONS, natives)}


def _real_rows() -> np.ndarray:
    """Every warm feature row of the bundled candle files, in file order."""
    return np.vstack([series_rows(read_candle_file(p).candles).X for p in sorted(BUNDLED.glob("*.csv.gz"))])


def _timed(fn, rows: int, rounds: int, min_seconds: float = 0.05) -> tuple[float, float]:
    """(wall, CPU) microseconds per row of ``fn()``: each the best over ``rounds`` rounds of at least
    ``min_seconds`` (:func:`core.timing.best_seconds`). ONNX Runtime (1 intra-op thread), the compiled trees,
    LightGBM (``num_threads=1``) and PyTorch (one thread, as served) compute on the calling thread, so its
    CPU time is their cost without the time other processes took the core."""
    (best,) = best_seconds([fn], rounds, min_seconds)
    return best.wall / rows * 1e6, best.cpu / rows * 1e6


def _per_row_us(fn, rows: int, rounds: int) -> float:
    return _timed(fn, rows, rounds)[0]


def _compare(onnx_fn, native_fn, X: np.ndarray, rounds: int, compiled_fn=None) -> dict[str, dict[str, float]]:
    out = {}
    for n in BATCHES:
        x = np.ascontiguousarray(X[:n])
        o, o_cpu = _timed(lambda: onnx_fn(x), n, rounds)
        nat, nat_cpu = _timed(lambda: native_fn(x), n, rounds)
        out[str(n)] = {"onnx_us": round(o, 2), "native_us": round(nat, 2), "ratio": round(nat / o, 2),
                       "onnx_cpu_us": round(o_cpu, 2), "native_cpu_us": round(nat_cpu, 2),
                       "ratio_cpu": round(nat_cpu / o_cpu, 2)}
        if compiled_fn is not None:  # ratio: how many times faster than ONNX Runtime
            c, c_cpu = _timed(lambda: compiled_fn(x), n, rounds)
            out[str(n)].update(compiled_us=round(c, 2), compiled_cpu_us=round(c_cpu, 2),
                               compiled_vs_onnx_cpu=round(o_cpu / c_cpu, 2))
    return out


def _buffer_reuse(lgbm, X: np.ndarray, rounds: int) -> dict[str, dict[str, float]]:
    session, name = lgbm._session, lgbm._input
    buffer = np.empty((max(BATCHES), X.shape[1]), dtype=np.float32)
    out = {}
    for n in (1, 1024):
        x = np.ascontiguousarray(X[:n])

        def reused():
            view = buffer[:n]
            np.copyto(view, x)
            return session.run([P_UP_OUTPUT], {name: view})

        # CPU time: the difference sought (~1 us) is far below the wall-clock noise of a shared machine.
        fresh = _timed(lambda: session.run([P_UP_OUTPUT], {name: np.ascontiguousarray(x, dtype=np.float32)}),
                       n, rounds)[1]
        out[str(n)] = {"fresh_cpu_us": round(fresh, 2), "reused_cpu_us": round(_timed(reused, n, rounds)[1], 2)}
    return out


def _symbols(n: int) -> tuple[list, list]:
    """``n`` symbols replaying real series (symbol k: file k mod files, shifted by 7 * (k // files) candles):
    59 warm-up candles each, then the one closing candle per symbol that is timed."""
    series = [read_candle_file(p).candles for p in sorted(BUNDLED.glob("*.csv.gz"))]
    warm, closing = [], []
    for k in range(n):
        base = series[k % len(series)]
        start = 7 * (k // len(series)) % (len(base) - 60)
        candles = [dataclasses.replace(c, symbol=f"S{k:04d}") for c in base[start:start + 60]]
        warm.extend(candles[:-1])
        closing.append(candles[-1])
    return warm, closing


def _windows(n: int) -> np.ndarray:
    """(n, 60, 41) float32: the window each of ``n`` symbols replaying real series holds at its closing candle."""
    warm, closing = _symbols(n)
    states: dict[str, FeatureState] = {}
    for c in warm + closing:
        states.setdefault(state_key(c.symbol, c.timeframe), FeatureState()).update(c)
    return np.stack([pad_windows(states[state_key(c.symbol, c.timeframe)].window(60))[0] for c in closing])


def _scoring_step(bundle: Any, rounds: int, onnx_bundle: Any = None, model_dir: Path | None = None) -> dict[str, Any]:
    """The full default ensemble for N_SYMBOLS closing candles in one call, one step per candle: each
    symbol's recurrent state is the one its previous 59 candles left (what the live book holds)."""
    windows = _windows(N_SYMBOLS)
    rows, history = windows[:, -1].astype(np.float64), windows[:, :-1]
    out: dict[str, Any] = {}
    steps = bundle.step_members
    states = {}
    for member in steps:
        state = member.model.initial_state(N_SYMBOLS)
        for t in range(history.shape[1]):
            _, state = member.model.step(history[:, t], state)
        states[member.name] = state
    score_ms, score_cpu_ms = (t / 1000 for t in _timed(lambda: bundle.score(rows, None, None, states), 1, rounds))
    out["bundle_score_ms"], out["bundle_score_cpu_ms"] = round(score_ms, 2), round(score_cpu_ms, 2)
    out["tree_provider"] = bundle.ensemble.members[0].model.provider
    if onnx_bundle is not None:  # the same bundle with the trees on ONNX Runtime, side by side
        _, onnx_cpu_ms = (t / 1000 for t in _timed(lambda: onnx_bundle.score(rows, None, None, states), 1, rounds))
        out["bundle_score_cpu_ms_onnx_trees"] = round(onnx_cpu_ms, 2)
    out["members"] = list(bundle.versions)
    per_member = {}
    for member in bundle.members:
        if member.reads == STEPS:
            fn = lambda m=member: m.run(rows, None, states[m.name])  # noqa: E731
        else:
            fn = lambda m=member: m.run(rows, None, None)  # noqa: E731
        per_member[member.name] = round(_timed(fn, 1, rounds)[1] / 1000, 2)
    out["member_cpu_ms"] = per_member
    for member in steps:  # the step against the 60-step window pass of the same weights, per candle
        step_us = _timed(lambda: member.run(rows, None, states[member.name]), N_SYMBOLS, rounds)[1]
        window_us = _timed(lambda: member.run(None, windows, None), N_SYMBOLS, max(1, rounds // 2))[1]
        out["sequence_step"] = {"step_cpu_us": round(step_us, 2), "window_pass_cpu_us": round(window_us, 2),
                                "ratio": round(window_us / step_us, 1), "provider": member.model.provider}
        if model_dir is not None and member.model.provider == ONNX_STEP_PROVIDER:  # the NumPy and PyTorch steps beside it
            from models.mamba.recurrent import MambaRecurrent

            others = [NumpyMambaStep.load(model_dir / SEQUENCE_DIR), MambaRecurrent.load(model_dir / SEQUENCE_DIR, device="cpu")]
            serving_threads()  # PyTorch on one thread, as a worker with a GPU-less torch path would run it
            state = states[member.name]
            out["sequence_step"]["step_alone_cpu_us"] = {
                m.provider: round(_timed(lambda m=m: m.step(rows, state), N_SYMBOLS, rounds)[1], 2)
                for m in (member.model, *others)}
    return out


def _mamba(model_dir: Path, rounds: int) -> dict[str, Any] | str:
    try:
        from models.mamba import MambaModel  # written separately; optional here
    except Exception as exc:  # not there yet, or its dependencies are missing
        return f"not available ({type(exc).__name__}: {exc})"
    mamba_dir = model_dir / SEQUENCE_DIR
    if not mamba_dir.is_dir():
        return f"not available (no trained model in {mamba_dir})"
    try:
        model = MambaModel.load(mamba_dir)
        out = {}
        for n in (1, 256):
            windows = np.zeros((n, 60, 41), dtype=np.float32)
            out[str(n)] = {"us_per_sequence": round(_per_row_us(lambda: model.predict_proba(windows), n, rounds), 1)}
        return out
    except Exception as exc:
        return f"not available ({type(exc).__name__}: {exc})"


def _goal(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.inference", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON object, last line")
    parser.add_argument("--model-dir", type=Path, default=REPO / "var" / "bench" / "inference")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)

    boosters = _prepare(args.model_dir)
    X = _real_rows()
    h1 = DirectionModel.load(args.model_dir / horizon_dir(1))
    serving_threads()
    bundle = load_model(args.model_dir)  # as the worker serves it: the Mamba member in step mode, trees compiled
    onnx_bundle = load_model(args.model_dir, tree_runtime="onnx")
    lgbm, onnx_lgbm = bundle.ensemble.members[0].model, onnx_bundle.ensemble.members[0].model
    results: dict[str, Any] = {
        "rows_available": len(X), "load_average": round(os.getloadavg()[0], 2), "provider": bundle.provider, "bundle_version": bundle.version,
        "lgbm_h1": _compare(h1.predict_proba, lambda x: boosters[1].predict(x, num_threads=1), X, args.rounds),
        "lgbm_all": _compare(onnx_lgbm.predict_proba,
                             lambda x: [boosters[h].predict(x, num_threads=1) for h in HORIZONS], X, args.rounds,
                             compiled_fn=lgbm.predict_proba if lgbm.provider != onnx_lgbm.provider else None),
        "input_buffer": _buffer_reuse(onnx_lgbm, X, args.rounds),
        "scoring_1000": _scoring_step(bundle, args.rounds, onnx_bundle, args.model_dir),
        "mamba": _mamba(args.model_dir, args.rounds),
        "goals": GOALS,
    }
    one = results["lgbm_h1"]["1"]
    print(f"provider: {bundle.provider}; {len(X)} real feature rows; bundle {bundle.version}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for key, title in (("lgbm_h1", "LightGBM horizon 1"), ("lgbm_all", f"LightGBM {len(HORIZONS)} horizons")):
        print(f"\n{title}, us per row (wall / CPU)      ONNX             native         native/ONNX")
        for n, r in results[key].items():
            print(f"  batch {n:>5}          {r['onnx_us']:>8.2f} / {r['onnx_cpu_us']:<7.2f} {r['native_us']:>8.2f} / "
                  f"{r['native_cpu_us']:<7.2f} {r['ratio']:>5.2f}x / {r['ratio_cpu']:.2f}x")
    for clock, suffix in (("wall", ""), ("CPU", "_cpu")):
        us, ratio = one[f"onnx{suffix}_us"], one[f"ratio{suffix}"]
        print(f"  goals ({clock}): one row <= {GOALS['onnx_one_row_us']:g} us: "
              f"{_goal(us <= GOALS['onnx_one_row_us'])} ({us:.1f}); >= {GOALS['speedup_batch_1']:g}x native at "
              f"batch 1: {_goal(ratio >= GOALS['speedup_batch_1'])} ({ratio:.1f}x)")
    if "compiled_us" in results["lgbm_all"]["1"]:
        print(f"\nLightGBM {len(HORIZONS)} horizons compiled ({lgbm.provider}), us per row (wall / CPU), x faster than ONNX (CPU)")
        for n, r in results["lgbm_all"].items():
            print(f"  batch {n:>5}          {r['compiled_us']:>8.2f} / {r['compiled_cpu_us']:<7.2f} {r['compiled_vs_onnx_cpu']:>5.2f}x")
    print("\ninput buffer (merged graph, CPU us per row): " + ", ".join(
        f"batch {n}: fresh {r['fresh_cpu_us']}, reused {r['reused_cpu_us']}" for n, r in results["input_buffer"].items()))
    s = results["scoring_1000"]
    print(f"\n{N_SYMBOLS} symbols at once, the full default ensemble ({' + '.join(s['members'])}), every horizon, "
          f"one step per candle: ModelBundle.score {s['bundle_score_ms']:.2f} ms wall, {s['bundle_score_cpu_ms']:.2f} ms "
          f"CPU (goal <= {GOALS['score_1000_ms']:g} ms CPU: {_goal(s['bundle_score_cpu_ms'] <= GOALS['score_1000_ms'])}); "
          "CPU per member: " + ", ".join(f"{k} {v:.2f} ms" for k, v in s["member_cpu_ms"].items())
          + f" (trees on {s['tree_provider']}); the same with the trees on ONNX Runtime: "
          f"{s.get('bundle_score_cpu_ms_onnx_trees', float('nan')):.2f} ms CPU")
    if "sequence_step" in s:
        q = s["sequence_step"]
        print(f"sequence member per candle (CPU, {q['provider']}): step {q['step_cpu_us']:.2f} us, 60-step window pass "
              f"{q['window_pass_cpu_us']:.2f} us: {q['ratio']:.0f}x cheaper (goal >= {GOALS['step_vs_window']:g}x: "
              f"{_goal(q['ratio'] >= GOALS['step_vs_window'])})")
        if "step_alone_cpu_us" in q:
            print("the step alone per candle (CPU), side by side: "
                  + ", ".join(f"{k} {v:.2f} us" for k, v in q["step_alone_cpu_us"].items()))
    mamba = results["mamba"]
    print("mamba window model (ONNX): " + (mamba if isinstance(mamba, str) else json.dumps(mamba)))
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
