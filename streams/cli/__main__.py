"""``python -m streams.cli``: the ``candleflow`` command."""

from streams.cli import main

main()
