"""``attnwatch demo``: the whole monitor in one process.

The scenario built from the seed data, the live terminal view, and the runner that puts the
embedded broker, the run loop and replay together. May import everything in ``pipeline``
except ``cli``, plus ``consumers`` and ``models``.
"""
