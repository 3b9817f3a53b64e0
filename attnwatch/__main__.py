"""``python -m attnwatch``: the same as the ``attnwatch`` console script."""

from attnwatch.cli import app

app()
