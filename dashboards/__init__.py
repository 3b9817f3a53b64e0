"""Analyst dashboards.

They read the store through ``pipeline.store``'s read API; nothing imports this package.
"""
