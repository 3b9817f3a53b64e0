"""The ``attnwatch`` command line: one Typer app, one module per command group.

``app`` holds the global options; ``settings``, ``kafka``, ``run`` and ``model``
each register their commands on it when imported.  The CLI is the top of the
stack: it may import anything in ``pipeline``, ``consumers`` and ``models``, and
nothing imports it.
"""

from pipeline.cli import kafka, model, run, settings
from pipeline.cli.app import app

__all__ = ["app", "kafka", "model", "run", "settings"]
