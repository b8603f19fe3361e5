"""SequenceBook keeps each version's states as rows of one matrix: the same states as a plain dict of arrays,
and memory that follows the live series, not the batches that stepped them."""

from __future__ import annotations

import numpy as np

from streams.sequence_book import SequenceBook, StateRows

SIZE = 6


def _bases(book: SequenceBook, keys: list[str]) -> set[int]:
    """The distinct arrays whose memory the stored states of ``keys`` keep alive."""
    return {id(a.base if a.base is not None else a) for key in keys for a in book.stored(key).values()}


def test_a_series_that_goes_quiet_does_not_keep_its_last_batch_alive():
    book = SequenceBook(lambda key: np.empty((0, SIZE), dtype=np.float32))
    keys = [f"S{i}|5m" for i in range(200)]
    book.set_states(keys, "v1", np.ones((200, SIZE), dtype=np.float32))
    for quiet in range(100):  # each batch leaves out one more series, which then never comes back
        live = keys[quiet + 1:]
        book.set_states(live, "v1", np.full((len(live), SIZE), quiet, dtype=np.float32))
    assert len(_bases(book, keys)) == 1  # one matrix, not one array per batch a quiet series was last in
    rows = book.versions["v1"]
    assert len(rows) == 200 and rows.capacity <= 2 * 200
    assert book.stored("S0|5m")["v1"].tolist() == [1.0] * SIZE
    assert book.stored("S199|5m")["v1"].tolist() == [99.0] * SIZE


def test_rows_of_series_that_left_are_reused():
    rows = StateRows(SIZE)
    for i in range(1000):  # series come and go, at most 10 at a time
        rows.put([f"K{i}"], np.full((1, SIZE), i, dtype=np.float32))
        if i >= 10:
            rows.drop(f"K{i - 10}")
    assert len(rows) == 10 and rows.capacity <= 16
    assert rows.get("K999").tolist() == [999.0] * SIZE and rows.get("K500") is None


def test_it_holds_what_a_dict_of_arrays_holds_whatever_the_operations():
    rng = np.random.default_rng(7)
    book = SequenceBook(lambda key: np.empty((0, SIZE), dtype=np.float32))
    reference: dict[str, dict[str, np.ndarray]] = {}  # key -> version -> state: the plain form
    keys = [f"S{i}|1m" for i in range(30)]
    for _ in range(2000):
        op = rng.integers(4)
        chosen = list(rng.choice(keys, size=rng.integers(1, 12), replace=False))
        if op <= 1:  # a step of one version, the others kept or not
            version = f"v{rng.integers(3)}"
            keep = {f"v{k}" for k in range(3) if rng.random() < 0.5}
            states = rng.normal(size=(len(chosen), SIZE)).astype(np.float32)
            book.set_states(chosen, version, states, keep)
            for key, state in zip(chosen, states):
                mine = reference.setdefault(key, {})
                for v in [v for v in mine if v not in keep | {version}]:
                    del mine[v]
                mine[version] = state.copy()
        elif op == 2:  # series leave the live book
            book.forget(chosen)
            for key in chosen:
                reference.pop(key, None)
        else:  # a series read back from its stored form
            key = chosen[0]
            states = {f"v{k}": rng.normal(size=SIZE).astype(np.float32) for k in range(3) if rng.random() < 0.5}
            book.load(key, states)
            if states:
                reference[key] = {v: s.copy() for v, s in states.items()}
        for key in keys:
            held = {v: s.tolist() for v, s in book.stored(key).items()}
            assert held == {v: s.tolist() for v, s in reference.get(key, {}).items()}, key
    assert all(len(rows) > 0 for rows in book.versions.values())  # a version no series holds has no matrix
