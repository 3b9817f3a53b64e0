"""The ``attnwatch`` command line: one Typer app, one module per command group.

``app`` holds the global options; ``settings``, ``kafka``, ``run``, ``model``, ``explain``,
``alerts`` and ``purge`` each register their commands on it when imported; ``deadletter`` is
a command group (``attnwatch deadletter list|replay``) added here as a sub-app, as is ``fast``
(``attnwatch model export-onnx``).  The CLI is the top of the stack: it may import anything
in ``pipeline``, ``consumers`` and ``models``; only the composition root ``attnwatch``
imports it (``attnwatch.cli`` adds the dashboard's commands: the console script).
"""

from pipeline.cli import alerts, deadletter, explain, fast, kafka, model, purge, run, settings
from pipeline.cli.app import app

app.add_typer(deadletter.deadletter_app, name="deadletter")
app.add_typer(fast.model_app, name="model")

__all__ = [
    "alerts",
    "app",
    "deadletter",
    "explain",
    "fast",
    "kafka",
    "model",
    "purge",
    "run",
    "settings",
]
