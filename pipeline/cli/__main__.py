"""``python -m pipeline.cli``: the pipeline's commands alone (kept for one release).

Use ``attnwatch`` or ``python -m attnwatch``: the one CLI, with ``dashboard``, ``report``
and the demo's dashboard.
"""

from pipeline.cli import app

app()
