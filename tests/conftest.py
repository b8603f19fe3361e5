"""Shared fixtures: one real embedded broker per test session, a model trained once on real candles,
and a factory for workers with their own app id, topics and ports."""

from __future__ import annotations

import itertools
import os
import uuid
from pathlib import Path

import pytest

from streams.broker import EmbeddedBroker, free_port
from core.settings import Settings
from core.topics import ensure_topics, topic_specs

REPO = Path(__file__).resolve().parent.parent
CANDLES = REPO / "data" / "candles"
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(scope="session")
def broker():
    """A Tansu broker on a free 127.0.0.1 port, the same launcher as `candleflow broker`."""
    with EmbeddedBroker(log_path=Path(os.environ.get("TMPDIR", "/tmp")) / f"candleflow-test-broker-{uuid.uuid4().hex[:8]}.log") as b:
        yield b


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory) -> Path:
    """A real LightGBM model trained (once per session) on a slice of the real bundled candles."""
    from core.candle_files import read_candle_file
    from training.train import train_model

    slices = tmp_path_factory.mktemp("train-data")
    files = []
    for source in sorted(CANDLES.glob("*.csv.gz")):
        lines = source.open("rb").read()
        import gzip

        rows = gzip.decompress(lines).decode().splitlines()[:2501]  # header + the first 2,500 candles
        target = slices / source.name.replace(".csv.gz", ".csv")
        target.write_text("\n".join(rows) + "\n")
        assert read_candle_file(target).candles
        files.append(target)
    out = tmp_path_factory.mktemp("model")
    train_model(files, out, horizon=1, progress=False)
    return out


@pytest.fixture(scope="session")
def default_bundle(tmp_path_factory) -> Path:
    """The model `make demo` trains: LightGBM per horizon and the Mamba member on all the bundled candles,
    the member's weight chosen on held-out rows. Its training stops after 2 epochs here (the demo's early
    stopping usually ends after 3-4): the same recipe, a minute less of the suite."""
    from candleflow.demo import ensure_model

    out = tmp_path_factory.mktemp("default-bundle")
    # Without the student: a batch over the latency budget on a loaded CI host would be served by it, and
    # the tests comparing live with replay (always the full model) would compare two models.
    ensure_model(out, sorted(CANDLES.glob("*.csv.gz")), progress=False, distil=False, mamba_epochs=2)
    return out


HELD_OUT = CANDLES / "held-out"  # real candles no bundled model is trained on


def tiny_sequence_bundle(out: Path, n_candles: int = 900) -> list:
    """A bundle of every horizon whose skill does not matter (LightGBM, 5 rounds) with a tiny Mamba member
    (d_model 8, one layer, one epoch) in ``out``, on the first real ETH-BTC candles, which it returns."""
    from core.candle_files import read_candle_file
    from models.mamba.classifier import MambaConfig
    from training.mamba import train_mamba_on_series
    from training.train import train_horizons_on_series

    candles = read_candle_file(CANDLES / "ETH-BTC_5m.csv.gz").candles[:n_candles]
    train_horizons_on_series([candles], out, progress=False, num_boost_round=5)
    train_mamba_on_series([candles], out / "mamba", progress=False, config=MambaConfig(d_model=8, n_layers=1),
                          epochs=1, threads=1)
    return candles


_counter = itertools.count()


@pytest.fixture
def app_settings(broker, trained_model, tmp_path):
    """Settings factory: every call gives a fresh app id, topic prefix, state dir and web port."""

    def make(**overrides) -> Settings:
        n = next(_counter)
        run = uuid.uuid4().hex[:8]
        settings = Settings(broker={"bootstrap": broker.bootstrap}, app_id=f"cf-test-{run}-{n}", topic_prefix=f"t{run}{n}",
                            partitions=4, timeframes=("5m",), model_dir=trained_model, data_dir=tmp_path / f"state-{n}",
                            web={"port": free_port()}, signal_threshold=0.05)
        settings = settings.replace(**overrides)
        ensure_topics(settings.broker.bootstrap, topic_specs(settings))
        return settings

    return make


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keeps each phase's report on the test item, so a fixture's teardown can tell that its test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture
def worker_factory(tmp_path, request):
    """Starts `candleflow worker` processes and stops them after the test; when the test failed, the tail of
    every worker's log is printed (shown with the failure: a CI run leaves no temporary directory behind)."""
    from streams.worker_process import WorkerProcess, tail_file

    started = []

    def start(settings: Settings) -> WorkerProcess:
        worker = WorkerProcess(settings, tmp_path / f"worker-{settings.app_id}-{settings.web.port}.log").start()  # one log per worker
        started.append(worker)
        worker.wait_ready()
        return worker

    yield start
    for worker in started:
        worker.stop()
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        for worker in started:
            print(f"\n--- the last lines of {worker.log_path.name} ---\n{tail_file(worker.log_path, 120)}")
