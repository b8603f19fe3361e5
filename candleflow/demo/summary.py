"""What ``candleflow demo`` reports: :class:`DemoSummary`, as text (and as JSON with ``--json``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["DemoSummary"]


@dataclass
class DemoSummary:
    candles: int
    valid_candles: int
    predictions: int
    signals: int
    dead_letters: int
    latency_ms_p50: float | None
    latency_ms_p99: float | None
    prediction_latency_ms_p50: float | None
    symbols: list[str]
    model_version: str
    elapsed_s: float
    complete: bool
    regime_change: dict[str, Any] | None = None  # --regime-change: what the learning loop did (candleflow.demo.loop)
    signals_by_direction: dict[str, int] = field(default_factory=dict)
    dead_letter_reasons: dict[str, int] = field(default_factory=dict)  # 'kind: reason' -> messages
    members: dict[str, str] = field(default_factory=dict)  # ensemble member -> version, as the predictions name them

    def text(self) -> str:
        lat = lambda v: "n/a" if v is None else f"{v:.1f} ms"  # noqa: E731
        return "\n".join([
            "Candleflow demo summary",
            f"  symbols             {', '.join(self.symbols)}",
            f"  model               {self.model_version}",
            f"  candles in          {self.candles} ({self.valid_candles} valid, {self.candles - self.valid_candles} invalid on purpose)",
            f"  predictions out     {self.predictions}",
            f"  model members       {', '.join(f'{k} {v}' for k, v in sorted(self.members.items())) or 'n/a'}",
            f"  signals out         {self.signals}" + (f" ({', '.join(f'{n} {d}' for d, n in sorted(self.signals_by_direction.items()))})"
                                                       if self.signals_by_direction else ""),
            f"  dead letters        {self.dead_letters}",
            *(f"    {n} x {reason}" for reason, n in sorted(self.dead_letter_reasons.items())),
            f"  candle->signal      p50 {lat(self.latency_ms_p50)}, p99 {lat(self.latency_ms_p99)}",
            f"  candle->prediction  p50 {lat(self.prediction_latency_ms_p50)}",
            f"  elapsed             {self.elapsed_s:.1f} s" + ("" if self.complete else "  (INCOMPLETE: timed out)"),
            *self._regime_lines(),
        ])

    def _regime_lines(self) -> list[str]:
        r = self.regime_change
        if r is None:
            return []
        lines = ["Regime change (the learning loop)",
                 f"  market changed at   candle {r['changed_at']} of {r['candles']} ({r['symbol']}, every other move mirrored)"]
        if r.get("request") is None:
            return lines + ["  retrain request     none (the drift watches saw no change)"]
        q, trial = r["request"], r.get("retrain") or {}
        lines += [f"  retrain request     {q['after_candles']} candles after the change: {', '.join(q['reasons'])}",
                  f"  change seen since   {q['since_from_change']:+d} candles from the true change"]
        if trial:
            lines += [f"  retrained on        {trial['candles']} candles from the candle topic (since {trial['from_change']:+d})",
                      f"  new model           {trial['version']}: {trial['decision']} ({trial['reason']})"]
        promotion = r.get("promotion")
        if promotion:
            lines.append(f"  shadow A/B test     {promotion['decision']}: {promotion['reason']}")
            if promotion.get("paired_outcomes"):
                lines.append(f"  on the same candles accuracy {promotion['accuracy_active']:.3f} (serving) vs "
                             f"{promotion['accuracy_candidate']:.3f} (candidate), {promotion['paired_outcomes']:,} paired outcomes")
            if promotion.get("serving"):
                state = "serving it" if promotion.get("worker_serves_it") else "NOT serving it yet"
                lines.append(f"  the worker          {state}: {promotion['serving']}")
        return lines
