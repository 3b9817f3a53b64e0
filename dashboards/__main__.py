"""``python -m dashboards``: serve the dashboard (see :func:`dashboards.cli.dashboard`)."""

import typer

from dashboards.cli import dashboard

if __name__ == "__main__":
    typer.run(dashboard)
