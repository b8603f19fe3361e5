"""Doctest support for ``models/mamba/``: a tiny Mamba model trained on the bundled candles."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def _mamba_doctest_model_dir(tmp_path_factory):
    from models.mamba.classifier import MambaConfig
    from streams.candle_files import read_candle_file
    from training.mamba import BUNDLED, train_mamba_on_series

    out = tmp_path_factory.mktemp("mamba-doctest-model")
    candles = read_candle_file(BUNDLED / "ETH-BTC_5m.csv.gz").candles[:300]
    # A small network and one epoch: the examples show the API, not the model's skill.
    train_mamba_on_series([candles], out, progress=False, config=MambaConfig(d_model=8, n_layers=1),
                          epochs=1, threads=1)
    return out


@pytest.fixture(autouse=True)
def _mamba_model_dir_for_doctests(request, doctest_namespace):
    # Trained only when a doctest that needs it runs (the serving model's), not for every doctest here.
    if request.node.name.endswith(("mamba.model", "mamba.recurrent")):
        doctest_namespace["mamba_model_dir"] = request.getfixturevalue("_mamba_doctest_model_dir")
