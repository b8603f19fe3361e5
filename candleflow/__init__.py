"""The entry points above every other package: the ``candleflow`` command (:mod:`candleflow.cli`, one
module per family of commands), the worker it starts (:mod:`candleflow.worker`: the Faust app of
``streams/app.py`` with the agents of ``agents/`` and the web views of :mod:`candleflow.web` attached),
the demo (:mod:`candleflow.demo`) and replay (:mod:`candleflow.replay`).

This is the only package that imports both ``streams/`` and ``agents/``: the agents use the runtime and
the step in ``streams/``, and nothing in ``streams/`` imports the agents (``docs/architecture.md``).
``python -m candleflow`` is the ``candleflow`` command.
"""
