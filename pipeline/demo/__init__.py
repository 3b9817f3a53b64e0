"""The demo's stream: events built from the seed data, stamped over a simulated day.

``scenario`` (conversations, news, an optional sentiment shift, malformed events) and
``day`` (event times spread over 24 hours, replayed in minutes): pure generators that
take their own options, never the settings.  Used by ``attnwatch demo`` and ``attnwatch
replay`` (in the composition root ``attnwatch``) and by the bench harness.  May import
``models`` (the seed data) and ``consumers`` (the replay item); nothing else in ``pipeline``.
"""
