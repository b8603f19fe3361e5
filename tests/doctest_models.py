"""Doctest support (a pytest plugin, ``-p tests.doctest_models`` in pyproject.toml): small real models for
the examples in ``models/`` that load one, trained once per run and only when such an example runs."""

from __future__ import annotations

import pytest
from _pytest.doctest import DoctestItem

# doctest name fragment -> (namespace name, the fixture that trains its model)
_NEEDS = {"models.direction": ("model_dir", "_doctest_model_dir"),
          "models.compiled_trees": ("model_dir", "_doctest_model_dir"),
          "models.mamba.": ("mamba_model_dir", "_mamba_doctest_model_dir")}  # every Mamba module's examples


@pytest.fixture(scope="session")
def _doctest_model_dir(tmp_path_factory):
    from core.candle_files import read_candle_file
    from training.train import BUNDLED, train_on_series

    out = tmp_path_factory.mktemp("doctest-model")
    train_on_series([read_candle_file(BUNDLED / "ETH-BTC_5m.csv.gz").candles[:1500]], out, progress=False)
    return out


@pytest.fixture(scope="session")
def _mamba_doctest_model_dir(tmp_path_factory):
    from models.mamba.classifier import MambaConfig
    from core.candle_files import read_candle_file
    from training.mamba import BUNDLED, train_mamba_on_series

    out = tmp_path_factory.mktemp("mamba-doctest-model")
    candles = read_candle_file(BUNDLED / "ETH-BTC_5m.csv.gz").candles[:300]
    # A small network and one epoch: the examples show the API, not the model's skill.
    train_mamba_on_series([candles], out, progress=False, config=MambaConfig(d_model=8, n_layers=1),
                          epochs=1, threads=1)
    return out


@pytest.fixture(autouse=True)
def _model_dirs_for_doctests(request, doctest_namespace):
    if not isinstance(request.node, DoctestItem):
        return
    for fragment, (name, fixture) in _NEEDS.items():
        if fragment in request.node.name:
            doctest_namespace[name] = request.getfixturevalue(fixture)
