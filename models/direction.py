"""The direction model: P(close rises over the next ``horizon`` candles), an exported LightGBM run by ONNX Runtime.

Loading checks everything that could make the stream score garbage quietly: the metadata parses, the
ONNX bytes are the ones it describes, and the model's feature order is exactly the engine's
``FEATURE_NAMES``. Any mismatch is a :class:`~core.errors.ConfigError`, at load, not per candle. A
:class:`DirectionModel` is served as a one-member ensemble (:class:`models.base.SingleHorizonModel`).

>>> import numpy as np
>>> from features import FEATURE_NAMES
>>> model = DirectionModel.load(model_dir)    # model_dir: a small model trained on the bundled candles
>>> model.name, model.horizon, model.version.startswith("lgbm-h1-")
('lgbm-direction', 1, True)
>>> p = model.predict_proba(np.zeros((3, len(FEATURE_NAMES))))
>>> p.shape, bool(((0 < p) & (p < 1)).all())
((3,), True)
>>> out = model.score(np.zeros((3, len(FEATURE_NAMES))))   # the serving contract: every horizon (here one)
>>> out.horizons, bool((out.prob_up[:, 0] == p).all()), out.versions == {model.name: model.version}
((1,), True, True)
>>> DirectionModel.load("no/such/dir")
Traceback (most recent call last):
...
core.errors.ConfigError: no/such/dir/model.json: model metadata not found

:class:`DirectionHorizons` holds one such model per horizon and scores them all in one ONNX run.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from models.base import SingleHorizonModel
from models.metadata import METADATA_FILE, ONNX_FILE, ModelMetadata
from models.profile import TrainingProfile, accuracy_by_horizon, read_reference
from models.compiled_trees import CompiledTrees, compile_trees, verified
from models.onnx_session import P_UP_OUTPUT, create_session, merge_p_up
from models.providers import CPU as CPU_PROVIDER
from core.errors import ConfigError

__all__ = ["DirectionHorizons", "DirectionModel", "load_checked"]

log = logging.getLogger(__name__)

_PARITY_ROWS = 512  # reference rows a compiled set is checked on at load (~2 ms)


def read_model_file(path: Path, what: str) -> bytes:
    """The bytes of a model file; ConfigError (one line) when it is missing or unreadable."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc}") from None


def _check_features(model_features: Sequence[str], where: Path) -> None:
    from features import (
        FEATURE_NAMES,  # the engine the stream feeds the model with
    )

    if tuple(model_features) != tuple(FEATURE_NAMES):
        missing = [n for n in FEATURE_NAMES if n not in model_features]
        extra = [n for n in model_features if n not in FEATURE_NAMES]
        detail = f"missing {missing}, unknown {extra}" if missing or extra else "same names, different order"
        raise ConfigError(
            f"{where}: the model was trained on other features than features computes ({detail}); "
            "retrain it with the current feature engine"
        )


def load_checked(model_dir: str | Path) -> tuple[ModelMetadata, bytes]:
    """``model.json`` and the ONNX bytes it describes, checked (digest, feature order); ConfigError if off."""
    model_dir = Path(model_dir)
    metadata = ModelMetadata.from_json(read_model_file(model_dir / METADATA_FILE, "model metadata").decode("utf-8", "replace"))
    onnx_bytes = read_model_file(model_dir / ONNX_FILE, "ONNX model")
    digest = hashlib.sha256(onnx_bytes).hexdigest()
    if digest != metadata.onnx_sha256:
        raise ConfigError(
            f"{model_dir / ONNX_FILE}: content does not match {METADATA_FILE} "
            f"(sha256 {digest[:12]}, expected {metadata.onnx_sha256[:12]}); corrupt or from another export"
        )
    _check_features(metadata.feature_names, model_dir)
    return metadata, onnx_bytes


class DirectionModel(SingleHorizonModel):
    """An exported direction classifier, ready to score feature rows. Build it with :meth:`load`."""

    def __init__(self, metadata: ModelMetadata, session, provider: str, reference: np.ndarray | None = None) -> None:
        self.metadata = metadata
        self.provider = provider
        self._session = session
        self._input = metadata.input_name
        self._outputs = [metadata.output_name]
        self._n_features = len(metadata.feature_names)
        # What the drift watches compare live outcomes and features with (models/profile.py).
        self.profile = TrainingProfile(accuracy_by_horizon({metadata.horizon: metadata.metrics}), reference)

    @classmethod
    def load(
        cls, model_dir: str | Path, providers: Sequence[str] | None = None, intra_op_threads: int = 1
    ) -> DirectionModel:
        """Load ``model_dir/model.json`` + ``model_dir/model.onnx``; ConfigError if anything is off."""
        model_dir = Path(model_dir)
        metadata, onnx_bytes = load_checked(model_dir)
        session, provider = create_session(onnx_bytes, providers, intra_op_threads)
        inputs = {i.name: i for i in session.get_inputs()}
        if metadata.input_name not in inputs or metadata.output_name not in {o.name for o in session.get_outputs()}:
            raise ConfigError(f"{model_dir}: ONNX graph has no input {metadata.input_name!r} "
                              f"or output {metadata.output_name!r}")
        log.info("model %s %s loaded on %s", metadata.name, metadata.version, provider)
        return cls(metadata, session, provider, read_reference(model_dir))

    name = property(lambda self: self.metadata.name)
    version = property(lambda self: self.metadata.version)
    horizon = property(lambda self: self.metadata.horizon)
    feature_names = property(lambda self: self.metadata.feature_names)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """P(up) for each row of ``X`` (shape ``(n, n_features)``), in one ONNX Runtime call."""
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self._n_features:
            raise ValueError(f"expected an array of shape (n, {self._n_features}), got {X.shape}")
        # The graph takes float32; LightGBM's thresholds were exported as float32 too.
        X = np.ascontiguousarray(X, dtype=np.float32)
        (probabilities,) = self._session.run(self._outputs, {self._input: X})
        return probabilities[:, 1].astype(np.float64)

    def predict_proba_one(self, x: np.ndarray) -> float:
        """P(up) for one feature vector; for many rows at once use :meth:`predict_proba`."""
        return float(self.predict_proba(np.asarray(x).reshape(1, -1))[0])

    def __repr__(self) -> str:
        return f"DirectionModel({self.name!r}, version={self.version!r}, provider={self.provider!r})"



def _compiled_or_none(model_dirs: Sequence[Path], session, input_name: str) -> CompiledTrees | None:
    """The horizons' trees compiled, if they can be and give the ONNX session's output on the first
    horizon's reference rows (what training saw; zeros when it has none)."""
    compiled = compile_trees(model_dirs)
    if compiled is None:
        return None
    reference = read_reference(model_dirs[0])
    rows = reference[:_PARITY_ROWS] if reference is not None and len(reference) else np.zeros((1, compiled.n_features))
    (expected,) = session.run([P_UP_OUTPUT], {input_name: np.ascontiguousarray(rows, dtype=np.float32)})
    return compiled if verified(compiled, rows, expected.astype(np.float64)) else None


class DirectionHorizons:
    """The direction models of several horizons as one model: a feature row -> P(up) for every horizon.

    The horizons' graphs are merged into one ONNX graph at load (:func:`models.onnx_session.merge_p_up`),
    so a batch costs one session run however many horizons there are. Each horizon's model directory
    is checked as :meth:`DirectionModel.load` checks it. ``version`` is derived from the horizons' versions.

    >>> import numpy as np
    >>> from features import FEATURE_NAMES
    >>> lgbm = DirectionHorizons.load({1: model_dir})   # one directory per horizon
    >>> lgbm.horizons, lgbm.version.startswith("lgbm-"), lgbm.predict_proba(np.zeros((4, len(FEATURE_NAMES)))).shape
    ((1,), True, (4, 1))
    """

    name = "lgbm"
    reads = "features"  # the ensemble gives it feature rows (n, n_features), not windows

    def __init__(self, metadata: Sequence[ModelMetadata], session, provider: str,
                 compiled: CompiledTrees | None = None) -> None:
        self.metadata = tuple(metadata)
        # Where the trees run: the compiled CPU runtime when it was built and verified, else ONNX Runtime's.
        self.provider = compiled.provider if compiled is not None else provider
        self._session = session
        self._compiled = compiled
        self._input = metadata[0].input_name
        self._n_features = len(metadata[0].feature_names)
        self.horizons = tuple(m.horizon for m in metadata)
        self.versions = {m.horizon: m.version for m in metadata}
        # Deterministic: the same horizon models (in the same order) always give the same version.
        digest = hashlib.sha256(json.dumps([m.version for m in metadata]).encode()).hexdigest()[:12]
        self.version = f"{self.name}-{digest}"

    @classmethod
    def load(cls, model_dirs: Mapping[int, str | Path], providers: Sequence[str] | str | None = None,
             intra_op_threads: int = 1, tree_runtime: str = "auto") -> DirectionHorizons:
        """``model_dirs`` maps each horizon to its model directory; ConfigError if any is off or mislabelled.

        ``tree_runtime`` "auto": on the CPU provider the trees are compiled (:mod:`models.compiled_trees`)
        when every horizon has its ``model.txt`` and the compiled set gives ONNX Runtime's output on the
        reference rows; otherwise, and with "onnx", ONNX Runtime scores."""
        if tree_runtime not in ("auto", "onnx"):
            raise ConfigError(f"tree_runtime must be auto or onnx, got {tree_runtime!r}")
        if not model_dirs:
            raise ConfigError("no horizon model directories given")
        loaded = []
        for horizon, model_dir in sorted(model_dirs.items()):
            metadata, onnx_bytes = load_checked(model_dir)
            if metadata.horizon != horizon:
                raise ConfigError(f"{model_dir}: holds the horizon {metadata.horizon} model, expected horizon {horizon}")
            loaded.append((metadata, onnx_bytes))
        names = {(m.input_name, m.output_name) for m, _ in loaded}
        if len(names) != 1:
            raise ConfigError(f"the horizon models disagree on input/output names: {sorted(names)}")
        (input_name, output_name), = names
        merged = merge_p_up([b for _, b in loaded], input_name, output_name)
        session, provider = create_session(merged, providers, intra_op_threads)
        compiled = None
        if tree_runtime == "auto" and provider == CPU_PROVIDER:
            compiled = _compiled_or_none([Path(model_dirs[h]) for h in sorted(model_dirs)], session, input_name)
        model = cls([m for m, _ in loaded], session, provider, compiled)
        log.info("horizon models %s loaded on %s as %s", model.versions, model.provider, model.version)
        return model

    feature_names = property(lambda self: self.metadata[0].feature_names)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """(n, len(horizons)) P(up), column j for ``horizons[j]``, in one ONNX Runtime call."""
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self._n_features:
            raise ValueError(f"expected an array of shape (n, {self._n_features}), got {X.shape}")
        if self._compiled is not None:
            return self._compiled.predict_proba(X)
        # A preallocated float32 input buffer was measured (bench.inference) and gained nothing here:
        # the conversion costs ~1 us of a ~50 us five-horizon run, so the simpler code stays.
        (p_up,) = self._session.run([P_UP_OUTPUT], {self._input: np.ascontiguousarray(X, dtype=np.float32)})
        return p_up.astype(np.float64)

    def predict_proba_one(self, x: np.ndarray) -> dict[int, float]:
        """{horizon: P(up)} for one feature vector."""
        return dict(zip(self.horizons, self.predict_proba(np.asarray(x).reshape(1, -1))[0].tolist()))

    def __repr__(self) -> str:
        return f"DirectionHorizons(horizons={self.horizons}, version={self.version!r}, provider={self.provider!r})"
