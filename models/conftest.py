"""Doctest support for ``models/``: a small real model for the examples that load one."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def _doctest_model_dir(tmp_path_factory):
    from streams.candle_files import read_candle_file
    from training.train import BUNDLED, train_on_series

    out = tmp_path_factory.mktemp("doctest-model")
    train_on_series([read_candle_file(BUNDLED / "ETH-BTC_5m.csv.gz").candles[:1500]], out, progress=False)
    return out


@pytest.fixture(autouse=True)
def _model_dir_for_doctests(request, doctest_namespace):
    # Trained only when a doctest that needs it runs, not for every doctest in the package.
    if "direction" in request.node.name:
        doctest_namespace["model_dir"] = request.getfixturevalue("_doctest_model_dir")
