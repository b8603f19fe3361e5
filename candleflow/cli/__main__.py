"""``python -m candleflow.cli``: the ``candleflow`` command."""

from candleflow.cli import main

main()
