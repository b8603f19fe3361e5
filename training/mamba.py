"""Train the Mamba direction classifier on candle files; export ``model.onnx`` + ``weights.pt`` + ``model.json``.

- **Data**: windows, labels, the purged time-ordered split and the normalisation statistics of the training
  rows (:mod:`training.mamba_windows`).
- **Fit**: AdamW on the mean BCE over horizons, early stopping on the validation split; the metrics are the
  test split's.
- **Deterministic** on CPU: fixed seed, fixed thread count, deterministic algorithms; same candles ->
  same weights -> same ONNX bytes -> same version. Nothing is written unless ONNX == PyTorch (1e-4).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import io
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from core.candle import Candle
from core.errors import ConfigError
from core.timestamps import format_time
from features import FEATURE_NAMES
from models.mamba.backend import select_backend
from models.mamba.classifier import MambaClassifier, MambaConfig
from models.mamba.export import check_parity, export_onnx, portable_copy
from models.mamba.metadata import (
    ARRAYS_FILE,
    METADATA_FILE,
    MODEL_NAME,
    ONNX_FILE,
    WEIGHTS_FILE,
    MambaMetadata,
    mamba_version,
)
from models.mamba.numpy_step import arrays_bytes
from models.mamba.windows import WINDOW
from training.dataset import BUNDLED
from training.mamba_windows import HORIZONS, Windows, build_windows, normalisation_stats, split_windows
from training.metrics import direction_metrics

__all__ = ["BUNDLED", "TRAIN_DEFAULTS", "MambaTrainInfo", "train_mamba", "train_mamba_on_series"]

log = logging.getLogger(__name__)

TRAIN_DEFAULTS: dict[str, Any] = {
    "epochs": 8, "patience": 2, "batch_size": 256, "lr": 2e-3, "weight_decay": 0.01,
    "grad_clip": 1.0, "seed": 42, "valid_fraction": 0.1, "test_fraction": 0.2,
    # One thread: on the shared 2-core machines two threads measured slower (they fight other processes).
    "threads": 1,
    # "auto": mamba-ssm's kernels on CUDA when usable (faster, not bit-reproducible), else the CPU block.
    "backend": "auto",
}


@dataclass(frozen=True)
class MambaTrainInfo:
    """What :func:`train_mamba` wrote, how long it took, and how the model did on the test split."""

    out_dir: Path
    metadata: MambaMetadata
    parity_max_abs_diff: float
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)

    version = property(lambda self: self.metadata.version)
    metrics = property(lambda self: self.metadata.metrics)

    def to_dict(self) -> dict[str, Any]:
        return {"out_dir": str(self.out_dir), "version": self.version, "metrics": self.metrics,
                "n_train": self.metadata.n_train, "n_valid": self.metadata.n_valid,
                "n_test": self.metadata.n_test, "parity_max_abs_diff": self.parity_max_abs_diff,
                "seconds": round(self.seconds, 2), "history": self.history}


def _predict(model: MambaClassifier, x: np.ndarray, batch: int = 1024) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        out = [model(torch.from_numpy(x[i:i + batch])) for i in range(0, len(x), batch)]
    return torch.cat(out).numpy() if out else np.empty((0, len(model.config.horizons)))


def _device(model: MambaClassifier) -> torch.device:
    return model.head.weight.device


def _loss(model: MambaClassifier, w: Windows, batch: int = 1024) -> float:
    model.eval()
    fn = torch.nn.BCEWithLogitsLoss(reduction="sum")
    total, device = 0.0, _device(model)
    with torch.no_grad():
        for i in range(0, len(w), batch):
            total += float(fn(model.logits(torch.from_numpy(w.x[i:i + batch]).to(device)),
                              torch.from_numpy(w.y[i:i + batch]).float().to(device)))
    return total / (len(w) * w.y.shape[1])


def _fit(model: MambaClassifier, train: Windows, valid: Windows, opts: dict[str, Any],
         progress: bool) -> list[dict[str, float]]:
    """Adam on the mean BCE over horizons; keeps the weights of the best validation epoch."""
    gen = torch.Generator().manual_seed(opts["seed"])
    optim = torch.optim.AdamW(model.parameters(), lr=opts["lr"], weight_decay=opts["weight_decay"])
    loss_fn = torch.nn.BCEWithLogitsLoss()
    batch, device = opts["batch_size"], _device(model)
    n_batches = -(-len(train) // batch)
    best, best_state, stale, history = float("inf"), copy.deepcopy(model.state_dict()), 0, []
    with tqdm(total=opts["epochs"] * n_batches, unit="batch", desc="mamba", disable=not progress) as bar:
        for epoch in range(opts["epochs"]):
            model.train()
            order = torch.randperm(len(train), generator=gen).numpy()
            running = 0.0
            for b in range(n_batches):
                idx = np.sort(order[b * batch:(b + 1) * batch])
                x = torch.from_numpy(train.x[idx]).to(device)
                y = torch.from_numpy(train.y[idx]).float().to(device)
                loss = loss_fn(model.logits(x), y)
                optim.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), opts["grad_clip"])
                optim.step()
                running += float(loss.detach()) * len(idx)
                bar.update(1)
            valid_loss = _loss(model, valid)
            history.append({"epoch": epoch + 1, "train_loss": round(running / len(train), 5),
                            "valid_loss": round(valid_loss, 5)})
            bar.set_postfix(train=f"{running / len(train):.4f}", valid=f"{valid_loss:.4f}")
            if valid_loss < best - 1e-5:
                best, best_state, stale = valid_loss, copy.deepcopy(model.state_dict()), 0
            else:
                stale += 1
                if stale >= opts["patience"]:  # early stopping: validation loss stopped improving
                    bar.total = bar.n
                    break
    model.load_state_dict(best_state)
    return history


def _ranges(parts: dict[str, Windows]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for name, w in parts.items():
        for symbol in dict.fromkeys(w.symbol.tolist()):
            t = w.open_time[w.symbol == symbol]
            out.setdefault(symbol, {})[f"{name}_first"] = format_time(int(t.min()))
            out[symbol][f"{name}_last"] = format_time(int(t.max()))
    return out


def _write_atomically(path: Path, data: bytes) -> None:
    # A worker may be loading this directory: it must see the old file or the new one, never half of one.
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def train_mamba_on_series(series: Sequence[Sequence[Candle]], out_dir: str | Path, progress: bool = True,
                          config: MambaConfig | None = None, **options: Any) -> MambaTrainInfo:
    """Train on candle series (one per symbol and timeframe) and write the model to ``out_dir``.

    ``options`` override :data:`TRAIN_DEFAULTS` (epochs, patience, batch_size, lr, seed, threads, ...).
    """
    unknown = set(options) - set(TRAIN_DEFAULTS)
    if unknown:
        raise ConfigError(f"unknown Mamba training option(s): {', '.join(sorted(unknown))}")
    opts = {**TRAIN_DEFAULTS, **options}
    config = config or MambaConfig(n_features=len(FEATURE_NAMES), window=WINDOW, horizons=HORIZONS)
    started = time.perf_counter()
    out_dir = Path(out_dir)
    windows = build_windows(series, config.horizons, progress)
    train, valid, test = split_windows(windows, opts["valid_fraction"], opts["test_fraction"], max(config.horizons))
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    # Same thread count every run: float sums split differently across threads round differently.
    torch.set_num_threads(opts["threads"])
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        torch.manual_seed(opts["seed"])
        backend = select_backend() if opts["backend"] == "auto" else opts["backend"]
        model = MambaClassifier(config, backend=backend)
        mean, std = normalisation_stats(train)
        model.set_normalisation(mean, std)
        model.to("cuda" if backend == "mamba_ssm" else "cpu")
        history = _fit(model, train, valid, opts, progress)
        model = portable_copy(model)  # what is exported and evaluated: the CPU block, same weights
        prob = _predict(model, test.x)
        onnx_bytes, opset = export_onnx(model)
        diff = check_parity(onnx_bytes, model, valid.x[:512])
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    weights = buffer.getvalue()
    arrays = arrays_bytes(model.state_dict())  # the same weights for the CPU step without PyTorch
    onnx_sha = hashlib.sha256(onnx_bytes).hexdigest()
    best = min(history, key=lambda h: h["valid_loss"])
    metadata = MambaMetadata(
        name=MODEL_NAME, version=mamba_version(onnx_sha), feature_names=tuple(FEATURE_NAMES),
        horizons=tuple(config.horizons), window=config.window, onnx_sha256=onnx_sha,
        weights_sha256=hashlib.sha256(weights).hexdigest(), config=config.to_dict(),
        normalisation={
            "mean": [float(v) for v in model.mean], "std": [float(v) for v in model.std],
            "source": "training split only: each training row's own feature vector (last window step)",
            "rule": "z = (x - mean) / std; NaN -> 0 after normalisation; z clipped to [-clip, clip]; "
                    "std 1 for features without spread in training, mean 0 for features always NaN there",
            "clip": config.clip,
            "padding": f"windows shorter than {config.window} steps are left-padded with NaN rows",
        },
        onnx_opset=opset, symbols=tuple(dict.fromkeys(windows.symbol.tolist())),
        timeframes=tuple(dict.fromkeys(windows.timeframe.tolist())),
        training_range=_ranges({"train": train, "valid": valid, "test": test}),
        metrics={
            "split": "test: the last test_fraction of each series, after train and valid (purged)",
            "horizons": {str(h): direction_metrics(test.y[:, i], prob[:, i], test.last_return)
                         for i, h in enumerate(config.horizons)},
            "best_valid_loss": best["valid_loss"], "best_epoch": best["epoch"], "epochs_run": len(history),
        },
        params={**opts, "backend": backend}, n_train=len(train), n_valid=len(valid), n_test=len(test),
        created_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        torch_version=torch.__version__, arrays_sha256=hashlib.sha256(arrays).hexdigest(),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    # model.json last: a loader that sees it finds the files it describes.
    _write_atomically(out_dir / ONNX_FILE, onnx_bytes)
    _write_atomically(out_dir / WEIGHTS_FILE, weights)
    _write_atomically(out_dir / ARRAYS_FILE, arrays)
    _write_atomically(out_dir / METADATA_FILE, metadata.to_json().encode("utf-8"))
    info = MambaTrainInfo(out_dir, metadata, diff, time.perf_counter() - started, history)
    log.info("trained %s on %d windows (%d valid, %d test) in %.1f s", metadata.version, len(train), len(valid),
             len(test), info.seconds)
    return info


def train_mamba(files: Sequence[str | Path], out_dir: str | Path, epochs: int = TRAIN_DEFAULTS["epochs"],
                progress: bool = True, **options: Any) -> MambaTrainInfo:
    """Train on candle files (the format of ``data/candles/``); ``options`` as in :func:`train_mamba_on_series`."""
    from training.train import read_series

    return train_mamba_on_series(read_series(files), out_dir, progress=progress, epochs=epochs, **options)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m training.mamba [FILES...] --out DIR [--epochs N]``; prints the result as JSON."""
    import json

    parser = argparse.ArgumentParser(prog="python -m training.mamba", description=main.__doc__)
    parser.add_argument("files", nargs="*", type=Path, help="candle files (default: the bundled ones)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=TRAIN_DEFAULTS["epochs"])
    parser.add_argument("--threads", type=int, default=TRAIN_DEFAULTS["threads"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    files = args.files or sorted(BUNDLED.glob("*.csv.gz"))
    info = train_mamba(files, args.out, epochs=args.epochs, threads=args.threads)
    print(json.dumps(info.to_dict(), indent=2))


if __name__ == "__main__":
    main()
