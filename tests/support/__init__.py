"""Test doubles and fixtures shipped once, imported by every test folder.

What lives here (STYLE.md 21, issue 26): ``wait_for`` (waiting.py), ``free_port``
(network.py), the PostgreSQL cluster and the SQLite/PostgreSQL store fixtures (postgres.py,
stores.py), enriched-event builders (events.py), the fake Kafka producer (producers.py), the
tiny model's training arguments (model.py) and the pytest plugin that registers the session
fixtures (broker, tiny model, stores) and the cost markers (plugin.py).

It may import the product's packages and pytest; nothing in the product imports it.
"""
