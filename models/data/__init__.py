"""Labelled data: the ``Example`` type, the project's seed data, CSV/JSONL loading and readers
of public benchmark sets (Banking77, CLINC150, Financial PhraseBank).

Pure Python: imports nothing else from ``models``, so every other part may use it.
"""
