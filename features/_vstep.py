"""One candle for each of many warmed-up series: ``FeatureState._step`` vectorised over columns.

Every expression repeats the scalar blocks' (:mod:`.layer1`, :mod:`.trend`, :mod:`.oscillators`)
operations in the same order, branches become ``np.where``, so each column is bit-identical to
the scalar state. Only series whose state has passed ``READY_AFTER`` candles come here: then
every ring is full and every smoother past its seed, so no warm-up branch is needed. ``log`` is
``math.log`` element by element because ``np.log`` differs from it in the last bit for a few per
cent of inputs, and that bit would reach the volatility windows.

The caller (:class:`~features.bank.FeatureBank`) owns counters, times and the window;
this module owns only the arithmetic.
"""

from __future__ import annotations

import math

import numpy as np

from features._layout import LAYOUT
from features._vrolling import (
    Cols,
    ago,
    ema_push,
    lag_push,
    max_push,
    sum_push,
    true_range,
    var_push,
    var_value,
)
from features.names import N_FEATURES
from features.oscillators import MFI_DEAD_ZONE

__all__ = ["COUNTERS", "vector_step"]

# every block's candle counter grows by one per step (the max/min rings count their own)
COUNTERS = np.array([off for key, off in LAYOUT.offset.items() if key.endswith(".count")])


def _log(x: np.ndarray) -> np.ndarray:
    return np.fromiter(map(math.log, x.tolist()), np.float64, len(x))


def vector_step(M: np.ndarray, o, h, l, c, v, qv, tbb, tbq, trades, spread) -> np.ndarray:
    """Fold one candle per column of ``M`` in; return the ``(N_FEATURES, B)`` feature matrix."""
    S = Cols(M)
    out = np.empty((N_FEATURES, M.shape[1]))
    M[COUNTERS] += 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        out[0:10] = (o, h, l, c, v, qv, tbb, tbq, trades, spread)
        out[10] = np.where(np.isnan(tbb), np.nan, np.where(v > 0.0, tbb / v, 0.5))  # missing stays NaN
        _layer1(S, h, l, c, v, out)
        _macd(S, c, out)
        _oscillators(S, h, l, c, v, out)
        _atr_adx(S, h, l, c, out)
    return out


def _layer1(S: Cols, h, l, c, v, out) -> None:
    buf, p = lag_push(S, "layer1.closes", 16, c)
    r1 = _log(c / ago(S, buf, p, 16, 1))
    out[11] = r1
    out[12] = _log(c / ago(S, buf, p, 16, 5))
    out[13] = _log(c / ago(S, buf, p, 16, 15))
    for j, n in enumerate((5, 15, 30)):
        _, m2 = var_push(S, f"layer1.rv{n}", n, r1)
        out[14 + j] = np.sqrt(var_value(m2, n, 1))
    for j, n in enumerate((5, 15, 30)):
        ref, s1 = sum_push(S, f"layer1.s{n}", n, c)
        out[17 + j] = (c - (ref + s1 / n)) / c
    for j, n in enumerate((5, 15, 30)):
        out[20 + j] = (c - ema_push(S, f"layer1.e{n}", n, c)) / c
    out[23] = _rsi(S, c)
    tp = (h + l + c) / 3.0
    ref, s1 = sum_push(S, "layer1.vol", 20, v)
    total = ref * 20 + s1
    ref_tpv, s1_tpv = sum_push(S, "layer1.tpv", 20, tp * v)
    ref_tp, s1_tp = sum_push(S, "layer1.tp", 20, tp)
    traded = total > 0.0
    out[24] = np.where(traded, v / (ref + s1 / 20), 1.0)
    vwap = np.where(traded, (ref_tpv * 20 + s1_tpv) / total, ref_tp + s1_tp / 20)
    out[25] = (c - vwap) / c
    out[26] = np.where(h > l, (c - l) / (h - l), 0.5)


def _rsi(S: Cols, c) -> np.ndarray:
    prev, gain, loss = S["layer1.rsi.prev"], S["layer1.rsi.gain"], S["layer1.rsi.loss"]
    d = c - prev
    prev[:] = c
    g, lo = gain * 13, loss * 13
    down = d < 0
    lo = np.where(down, lo - d, lo)
    g = np.where(down, g, g + d)
    gain[:] = g / 14
    loss[:] = lo / 14
    total = gain + loss
    return np.where(total > 0.0, gain / total, 0.5)


def _macd(S: Cols, c, out) -> None:
    lag_push(S, "macd.closes", 12, c)
    slow = ema_push(S, "macd.slow", 26, c)
    fast = ema_push(S, "macd.fast", 12, c)
    line = fast - slow
    signal = ema_push(S, "macd.signal", 9, line)
    out[27], out[28], out[29] = line, signal, line - signal


def _oscillators(S: Cols, h, l, c, v, out) -> None:
    mid, m2 = var_push(S, "osc.bb", 20, c)
    sd = np.sqrt(var_value(m2, 20, 0))
    lower, upper = mid - 2.0 * sd, mid + 2.0 * sd
    out[30] = np.where(upper > lower, (c - lower) / (upper - lower), 0.5)
    out[31] = (upper - lower) / mid

    hh = max_push(S, "osc.hh", 14, h, True)
    ll = max_push(S, "osc.ll", 14, l, False)
    diff = (hh - ll) / 100.0
    fk, fp = lag_push(S, "osc.fast_k", 3, np.where(diff != 0.0, (c - ll) / diff, 0.0))
    idx = S.idx
    slow = (fk[fp, idx] + fk[(fp - 2) % 3, idx] + fk[(fp - 1) % 3, idx]) / 3.0
    sk, sp = lag_push(S, "osc.slow_k", 3, slow)
    out[33] = sk[(sp - 1) % 3, idx]
    out[34] = (sk[sp, idx] + sk[(sp - 2) % 3, idx] + sk[(sp - 1) % 3, idx]) / 3.0

    obv = S["osc.obv"]
    p = S.pos("osc.closes")
    prev = S.ring("osc.closes.buf", 11)[(p - 1) % 11, idx]
    obv[:] = np.where(c > prev, obv + v, np.where(c < prev, obv - v, obv))
    out[36] = obv

    tp = (h + l + c) / 3.0
    prev_tp = S["osc.prev_tp"]
    change = tp - prev_tp
    change = np.where(np.abs(change) <= MFI_DEAD_ZONE * (np.abs(tp) + np.abs(prev_tp)), 0.0, change)
    prev_tp[:] = tp
    flow = tp * v
    ref, s1 = sum_push(S, "osc.mf_pos", 14, np.where(change > 0.0, flow, 0.0))
    up = ref * 14 + s1
    ref, s1 = sum_push(S, "osc.mf_neg", 14, np.where(change < 0.0, flow, 0.0))
    down = ref * 14 + s1
    total = up + down
    out[37] = np.where(total > 0.0, 100.0 * (up / total), 0.0)

    ref, s1 = sum_push(S, "osc.cci_tp", 20, tp)
    mean = ref + s1 / 20
    # sequential sum down axis 0, in ring order, like the scalar loop
    dev = np.abs(S.ring("osc.cci_tp.buf", 20) - mean).sum(axis=0)
    diff_tp = tp - mean
    out[38] = np.where((diff_tp != 0.0) & (dev != 0.0), diff_tp / (0.015 * (dev / 20)), 0.0)

    out[39] = np.where(hh != ll, (hh - c) / (hh - ll) * -100.0, 0.0)
    buf, p = lag_push(S, "osc.closes", 11, c)
    prev10 = ago(S, buf, p, 11, 10)
    out[40] = np.where(prev10 != 0.0, (c / prev10 - 1.0) * 100.0, 0.0)


def _atr_adx(S: Cols, h, l, c, out) -> None:
    prev_close, atr = S["atr.prev_close"], S["atr.value"]
    tr = true_range(h, l, prev_close)
    prev_close[:] = c
    atr[:] = (atr * 13 + tr) / 14
    out[32] = atr

    ph, pl, pc = S["adx.ph"], S["adx.pl"], S["adx.pc"]
    diff_p, diff_m = h - ph, pl - l
    tr = true_range(h, l, pc)
    ph[:], pl[:], pc[:] = h, l, c
    minus_dm, plus_dm, trs, adx = S["adx.minus_dm"], S["adx.plus_dm"], S["adx.tr"], S["adx.adx"]
    minus = minus_dm - minus_dm / 14
    plus = plus_dm - plus_dm / 14
    trs[:] = trs - trs / 14 + tr
    to_minus = (diff_m > 0) & (diff_p < diff_m)
    to_plus = ~to_minus & (diff_p > 0) & (diff_p > diff_m)
    minus_dm[:] = np.where(to_minus, minus + diff_m, minus)
    plus_dm[:] = np.where(to_plus, plus + diff_p, plus)
    minus_di = 100.0 * (minus_dm / trs)
    plus_di = 100.0 * (plus_dm / trs)
    total = minus_di + plus_di
    dx = 100.0 * (np.abs(minus_di - plus_di) / total)
    moved = (trs != 0.0) & (total != 0.0)  # no movement at all: TA-Lib keeps the last ADX
    adx[:] = np.where(moved, (adx * 13 + dx) / 14, adx)
    out[35] = adx
