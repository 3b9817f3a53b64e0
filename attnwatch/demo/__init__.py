"""``attnwatch demo``: the whole monitor in one process, wired from the root settings.

The one-process runner (``run``: embedded broker, run loop, replay, metrics, the
dashboard on a thread), its live terminal view (``live``) and the dashboard it is given
(``dashboard``).  The stream it replays is a pure component below the root
(:mod:`pipeline.demo`: the scenario and the simulated day).  Part of the composition
root: may import everything; only :mod:`attnwatch.cli` imports it.
"""
