"""attnwatch, the application: the composition root.

This package reads the root settings (:mod:`attnwatch.settings`: every group nested,
from flags, environment and the TOML file) once and builds every component from them:
the one command line (:mod:`attnwatch.cli`, the ``attnwatch`` console script and
``python -m attnwatch``, with the dashboard's ``dashboard`` and ``report``), the run
service (:mod:`attnwatch.service`) and the demo (:mod:`attnwatch.demo`, with the dashboard
on a uvicorn thread in the same process).  Below it each component takes only its own
typed settings group (:mod:`pipeline.config`) and its collaborators.

Layering: the root may import everything (``pipeline``, ``consumers``, ``models``,
``dashboards``); nothing imports it (``.importlinter``, contract ``root``).  Decision
record: ``docs/decisions/0014-composition-root-and-settings.md``.
"""
