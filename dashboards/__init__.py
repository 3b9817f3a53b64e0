"""Analyst dashboards: the web app (later issue) and its access control (``auth``).

They read the store through ``pipeline.store``'s read API; nothing imports this package.
``auth`` makes the app refuse to listen beyond loopback without a bearer token.
"""
