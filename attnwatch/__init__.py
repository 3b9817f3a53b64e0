"""attnwatch, the application: the composition root.

This package reads the settings (:mod:`pipeline.config`) once and builds every
component from them: the one command line (:mod:`attnwatch.cli`, the ``attnwatch``
console script and ``python -m attnwatch``), the run service, the demo (with the
dashboard on a uvicorn thread in the same process) and the dashboard.  Below it each
component takes only its own typed settings group and its collaborators.

Layering: the root may import everything (``pipeline``, ``consumers``, ``models``,
``dashboards``); nothing imports it.  Decision record:
``docs/decisions/0014-composition-root-and-settings.md``.
"""
