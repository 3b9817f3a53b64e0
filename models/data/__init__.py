"""Labelled data: examples, the project's seed data and readers of public sets.

The ``Example`` type, CSV/JSONL loading, readers of Banking77, CLINC150 and Financial
PhraseBank, and which rows are out of scope (``out_of_scope``). Pure Python: imports nothing
else from ``models``, so every other part may use it.
"""
