"""Benchmarks: each module has ``main(argv) -> int`` and runs as ``python -m bench.<name>``."""
