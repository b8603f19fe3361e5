"""Batch (vectorised) classic indicators over one gap-free series, in CLASSIC_NAMES order.

Written from TA-Lib's definitions, independently of the streaming blocks, so the two check
each other; tests also check both against TA-Lib itself.

>>> import numpy as np
>>> c = np.linspace(1.0, 2.0, 40)
>>> classic_batch(c * 1.01, c * 0.99, c, np.full(40, 5.0)).shape
(40, 14)
"""

from __future__ import annotations

import numpy as np

from features._vec import (ema_loop, lag_ratio, nan_array, rolling_max, rolling_mean_var, rolling_min, rolling_sum,
                           window_mean)

__all__ = ["classic_batch"]

MFI_DEAD_ZONE = 1e-14  # relative; the same rule as TA-Lib >= 0.6 (see oscillators.py)


def _true_range(h: np.ndarray, l: np.ndarray, c: np.ndarray) -> np.ndarray:
    tr = nan_array(len(c))
    pc = c[:-1]
    tr[1:] = np.maximum(np.maximum(h[1:] - l[1:], np.abs(pc - h[1:])), np.abs(pc - l[1:]))
    return tr


def _macd(c: np.ndarray) -> list[np.ndarray]:
    m = len(c)
    if m < 34:
        return [nan_array(m)] * 3
    slow = ema_loop(c, 26)
    fast = ema_loop(c, 12, start=14)  # TA-Lib seeds the fast EMA where the slow one starts
    line = fast - slow
    signal = ema_loop(line, 9, start=25)
    line[:33] = np.nan
    return [line, signal, line - signal]


def _atr(tr: np.ndarray, n: int = 14) -> np.ndarray:
    out = nan_array(len(tr))
    if len(tr) <= n:
        return out
    trs = tr.tolist()
    acc = 0.0
    for x in trs[1:n + 1]:
        acc += x
    prev = acc / n
    res = [prev]
    for x in trs[n + 1:]:
        prev = (prev * (n - 1) + x) / n
        res.append(prev)
    out[n:] = res
    return out


def _adx(h: np.ndarray, l: np.ndarray, tr: np.ndarray, n: int = 14) -> np.ndarray:
    m = len(h)
    out = nan_array(m)
    if m < 2 * n:
        return out
    up = np.r_[np.nan, h[1:] - h[:-1]]
    down = np.r_[np.nan, l[:-1] - l[1:]]
    minus_move = (down > 0) & (up < down)
    minus = np.where(minus_move, down, 0.0).tolist()
    plus = np.where(~minus_move & (up > 0) & (up > down), up, 0.0).tolist()
    trs = tr.tolist()
    pdm = mdm = atr = 0.0
    for i in range(1, n):
        pdm, mdm, atr = pdm + plus[i], mdm + minus[i], atr + trs[i]
    adx = sum_dx = 0.0
    for i in range(n, m):
        mdm = mdm - mdm / n + minus[i]
        pdm = pdm - pdm / n + plus[i]
        atr = atr - atr / n + trs[i]
        dx = None
        if atr != 0.0:
            mdi, pdi = 100.0 * (mdm / atr), 100.0 * (pdm / atr)
            if mdi + pdi != 0.0:
                dx = 100.0 * (abs(mdi - pdi) / (mdi + pdi))
        if i < 2 * n:
            sum_dx += dx if dx is not None else 0.0
            if i == 2 * n - 1:
                adx = sum_dx / n
                out[i] = adx
        else:
            if dx is not None:
                adx = (adx * (n - 1) + dx) / n
            out[i] = adx
    return out


def _stoch_willr(h: np.ndarray, l: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m = len(c)
    hh, ll = rolling_max(h, 14), rolling_min(l, 14)
    flat = hh == ll
    with np.errstate(divide="ignore", invalid="ignore"):
        fast_k = np.where(flat, 0.0, (c - ll) / ((hh - ll) / 100.0))
        willr = np.where(flat, 0.0, (hh - c) / (hh - ll) * -100.0)
    willr[np.isnan(hh)] = np.nan
    slow_k, slow_d = nan_array(m), nan_array(m)
    slow_k[2:] = (fast_k[:-2] + fast_k[1:-1] + fast_k[2:]) / 3.0
    slow_d[2:] = (slow_k[:-2] + slow_k[1:-1] + slow_k[2:]) / 3.0
    slow_k[np.isnan(slow_d)] = np.nan  # TA-Lib emits %K and %D together
    return slow_k, slow_d, willr


def _mfi(tp: np.ndarray, v: np.ndarray, n: int = 14) -> np.ndarray:
    dtp = np.r_[0.0, np.diff(tp)]
    dtp[np.abs(dtp) <= MFI_DEAD_ZONE * np.r_[0.0, np.abs(tp[1:]) + np.abs(tp[:-1])]] = 0.0
    flow = tp * v
    pos = rolling_sum(np.where(dtp > 0, flow, 0.0)[1:], n)
    neg = rolling_sum(np.where(dtp < 0, flow, 0.0)[1:], n)
    total = pos + neg
    with np.errstate(divide="ignore", invalid="ignore"):
        mfi = np.where(total > 0.0, 100.0 * (pos / total), np.where(np.isnan(total), np.nan, 0.0))
    return np.r_[np.nan, mfi]


def _cci(tp: np.ndarray, n: int = 20) -> np.ndarray:
    out = nan_array(len(tp))
    if len(tp) < n:
        return out
    w = np.lib.stride_tricks.sliding_window_view(tp, n)
    mean = window_mean(w)
    dev = np.abs(w - mean[:, None]).sum(axis=1)
    diff = tp[n - 1:] - mean
    with np.errstate(divide="ignore", invalid="ignore"):
        out[n - 1:] = np.where((diff != 0.0) & (dev != 0.0), diff / (0.015 * (dev / n)), 0.0)
    return out


def classic_batch(h: np.ndarray, l: np.ndarray, c: np.ndarray, v: np.ndarray) -> np.ndarray:
    tr = _true_range(h, l, c)
    mid, var = rolling_mean_var(c, 20, ddof=0)
    sd = np.sqrt(var)
    lower, upper = mid - 2.0 * sd, mid + 2.0 * sd
    with np.errstate(divide="ignore", invalid="ignore"):
        pct_b = np.where(upper > lower, (c - lower) / (upper - lower), np.where(np.isnan(mid), np.nan, 0.5))
    stoch_k, stoch_d, willr = _stoch_willr(h, l, c)
    sign = np.r_[1.0, np.sign(np.diff(c))]
    obv = np.cumsum(sign * v)
    tp = (h + l + c) / 3.0
    ratio = lag_ratio(c, 10)
    roc = (ratio - 1.0) * 100.0
    cols = _macd(c) + [pct_b, (upper - lower) / mid, _atr(tr), stoch_k, stoch_d, _adx(h, l, tr), obv,
                       _mfi(tp, v), _cci(tp), willr, roc]
    return np.column_stack(cols)
