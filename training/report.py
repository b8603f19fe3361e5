"""The evaluation report for people: a text summary, a chart, and the files written by ``--out``.

The chart is a PNG through matplotlib when it is installed, else an SVG written here (matplotlib is
not a dependency of the product): calibration on the left, equity curves on the right.

>>> rep = {"model": {"version": "v1", "kind": "direction", "path": "/m"}, "data": {"holdout": "validation",
...        "symbols": {"A": {"rows": 2, "from": "x", "to": "y"}}}, "config": {"threshold": 0.3, "cost_bps": 10},
...        "notes": [], "horizons": {"1": {"rows": 2, "classification": {"accuracy": 0.5, "auc": 0.5, "log_loss": 0.69,
...        "brier": 0.25}, "calibration": {"bins": [{"mean_p": 0.5, "observed": 0.5, "n": 2}], "ece": 0.0},
...        "baselines": {"always_up": {"accuracy": 0.5}, "last_return_sign": {"accuracy": 0.5},
...        "no_skill": {"accuracy": 0.5, "log_loss": 0.69}}, "backtest": {}, "per_symbol": {},
...        "verdict": {"lines": ["accuracy beats always up: NO"]},
...        "equity": {"time": [0, 1], "model": [0.0, 0.01]}}}}
>>> print(summary_text(rep).splitlines()[0])
model v1 (direction) /m
>>> chart_svg(rep, "1").startswith("<svg")
True
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

__all__ = ["chart_svg", "summary_text", "write_report"]

_COLOURS = {"model": "#1f77b4", "always_long": "#7f7f7f", "last_return_sign": "#ff7f0e", "no_skill": "#2ca02c"}


def _f(x: Any, fmt: str = ".4f") -> str:
    return "n/a" if x is None else format(x, fmt)


def _bt_line(name: str, r: dict[str, Any]) -> str:
    return (f"  {name:<17} trades {r['trades']:>6}  hit {_f(r['hit_rate'], '.3f')}  "
            f"avg {_f(r['avg_return_bps'], '+.2f')} bps (gross {_f(r['avg_gross_bps'], '+.2f')})  "
            f"sharpe {_f(r['sharpe'], '+.2f')}  max dd {_f(r['max_drawdown'], '.2%')}")


def summary_text(report: dict[str, Any]) -> str:
    """A readable summary: per horizon the model against each baseline, then the per-symbol lines."""
    m, d, c = report["model"], report["data"], report["config"]
    out = [f"model {m['version']} ({m['kind']}) {m['path']}",
           "data: " + ", ".join(f"{s} {v['rows']} rows {v['from']}..{v['to']}" for s, v in d["symbols"].items()),
           f"holdout: {d['holdout']}; signal threshold {c['threshold']}; cost {c['cost_bps']} bps per trade"]
    for h, r in report["horizons"].items():
        cls, base = r["classification"], r["baselines"]
        out += ["", f"horizon {h} ({r['rows']} rows)",
                f"  accuracy {_f(cls['accuracy'])}  (always up {_f(base['always_up']['accuracy'])}, "
                f"last-return sign {_f(base['last_return_sign']['accuracy'])}, "
                f"no-skill {_f(base['no_skill']['accuracy'])})",
                f"  AUC {_f(cls['auc'])}  log loss {_f(cls['log_loss'])} (no-skill {_f(base['no_skill']['log_loss'])})"
                f"  Brier {_f(cls['brier'])}  calibration error {_f(r['calibration']['ece'])}"]
        if r["backtest"]:
            out.append("  backtest at the signal threshold:")
            out += [_bt_line(name, bt) for name, bt in r["backtest"].items()]
        for symbol, s in r["per_symbol"].items():
            sb = s["backtest"]["model"]
            out.append(f"  {symbol:<10} rows {s['rows']:>6}  accuracy {_f(s['classification']['accuracy'])} "
                       f"(always up {_f(s['baselines']['always_up']['accuracy'])})  AUC {_f(s['classification']['auc'])}"
                       f"  trades {sb['trades']}  avg {_f(sb['avg_return_bps'], '+.2f')} bps  {_seen(s)}")
        out += ["  " + line for line in r["verdict"]["lines"]]
    out += [f"note: {n}" for n in report.get("notes", [])]
    return "\n".join(out)


def _seen(symbol_report: dict[str, Any]) -> str:
    """Whether a symbol's rows were ones the model was trained on, and the unseen rows' own figures."""
    trained, unseen = symbol_report.get("trained_rows", 0), symbol_report.get("unseen_rows", symbol_report["rows"])
    if not trained:
        return "[unseen]"
    if not unseen:
        return "[all trained on: optimistic]"
    apart = symbol_report.get("unseen")
    figures = (f": unseen accuracy {_f(apart['classification']['accuracy'])} AUC {_f(apart['classification']['auc'])}"
               if apart else "")
    return f"[{trained} trained on, {unseen} unseen{figures}]"


def _polyline(xs: list[float], ys: list[float], colour: str) -> str:
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys))
    return f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{points}"/>'


def chart_svg(report: dict[str, Any], horizon: str, width: int = 900, height: int = 360) -> str:
    """Calibration (left) and equity curves (right) of one horizon as a standalone SVG document."""
    r = report["horizons"][horizon]
    pw, ph, top, left = width / 2 - 70, height - 90, 40, 55
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
             f'font-size="11"><rect width="100%" height="100%" fill="white"/>',
             f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="13">{html.escape(report["model"]["version"])}'
             f' horizon {horizon}: calibration and equity (net of {report["config"]["cost_bps"]} bps per trade)</text>']
    # Left: reliability diagram; the diagonal is perfect calibration, dot area ~ rows in the bin.
    x0, y0 = left, top + ph
    parts += [f'<rect x="{x0}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>',
              f'<line x1="{x0}" y1="{y0}" x2="{x0 + pw}" y2="{top}" stroke="#ccc" stroke-dasharray="4"/>',
              f'<text x="{x0 + pw / 2}" y="{y0 + 30}" text-anchor="middle">predicted P(up)</text>',
              f'<text x="{x0 - 35}" y="{top + ph / 2}" transform="rotate(-90 {x0 - 35} {top + ph / 2})" '
              f'text-anchor="middle">observed up-rate</text>']
    for v in (0, 0.5, 1):
        parts.append(f'<text x="{x0 + v * pw}" y="{y0 + 14}" text-anchor="middle">{v}</text>')
        parts.append(f'<text x="{x0 - 6}" y="{y0 - v * ph + 4}" text-anchor="end">{v}</text>')
    bins = [b for b in r["calibration"]["bins"] if b["mean_p"] is not None and b["observed"] is not None]
    n_max = max((b["n"] for b in bins), default=1)
    for b in bins:
        radius = 2 + 6 * (b["n"] / n_max) ** 0.5
        parts.append(f'<circle cx="{x0 + b["mean_p"] * pw:.1f}" cy="{y0 - b["observed"] * ph:.1f}" r="{radius:.1f}" '
                     f'fill="{_COLOURS["model"]}" fill-opacity="0.7"/>')
    # Right: cumulative net log return over time, model against the baselines.
    eq = r.get("equity") or {}
    names = [n for n in _COLOURS if n in eq]
    x1 = width / 2 + 40
    parts.append(f'<rect x="{x1}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>')
    if names and len(eq["time"]) > 1:
        t = eq["time"]
        values = [v for n in names for v in eq[n]] + [0.0]
        lo, hi = min(values), max(values)
        span = (hi - lo) or 1.0
        sx = lambda v: x1 + (v - t[0]) / ((t[-1] - t[0]) or 1) * pw  # noqa: E731
        sy = lambda v: top + ph - (v - lo) / span * ph  # noqa: E731
        parts.append(f'<line x1="{x1}" y1="{sy(0):.1f}" x2="{x1 + pw}" y2="{sy(0):.1f}" stroke="#ccc"/>')
        parts.append(f'<text x="{x1 - 4}" y="{sy(hi) + 4:.1f}" text-anchor="end">{hi:+.2f}</text>')
        parts.append(f'<text x="{x1 - 4}" y="{sy(lo) + 4:.1f}" text-anchor="end">{lo:+.2f}</text>')
        for i, n in enumerate(names):
            parts.append(_polyline([sx(v) for v in t], [sy(v) for v in eq[n]], _COLOURS[n]))
            parts.append(f'<text x="{x1 + 8}" y="{top + 14 + 13 * i}" fill="{_COLOURS[n]}">{n.replace("_", " ")}</text>')
        parts.append(f'<text x="{x1 + pw / 2}" y="{top + ph + 30}" text-anchor="middle">time (cumulative net log return)</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _png(report: dict[str, Any], horizon: str, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    r = report["horizons"][horizon]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    bins = [x for x in r["calibration"]["bins"] if x["mean_p"] is not None]
    a.plot([0, 1], [0, 1], ls="--", c="#ccc")
    a.scatter([x["mean_p"] for x in bins], [x["observed"] for x in bins], s=[8 + x["n"] / 5 for x in bins])
    a.set(xlabel="predicted P(up)", ylabel="observed up-rate", title="calibration")
    eq = r.get("equity") or {}
    for name, colour in _COLOURS.items():
        if name in eq:
            b.plot(eq["time"], eq[name], c=colour, label=name.replace("_", " "))
    b.set(title="cumulative net log return", xlabel="open time (epoch ms)")
    b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def write_report(report: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """``report.json``, ``report.txt`` and a chart of the first horizon in ``out_dir``; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "report.json", out_dir / "report.txt"]
    written[0].write_text(json.dumps(report, indent=2, allow_nan=False, default=str) + "\n")
    written[1].write_text(summary_text(report) + "\n")
    horizon = next(iter(report["horizons"]))
    png = out_dir / "report.png"
    if _png(report, horizon, png):
        written.append(png)
    else:
        svg = out_dir / "report.svg"
        svg.write_text(chart_svg(report, horizon))
        written.append(svg)
    return written
