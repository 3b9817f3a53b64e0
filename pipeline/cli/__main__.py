"""``python -m pipeline.cli``: the same as the ``attnwatch`` script."""

from pipeline.cli import app

app()
