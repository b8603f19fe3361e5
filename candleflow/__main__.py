"""``python -m candleflow``: the ``candleflow`` command."""

from candleflow.cli import main

main()
