"""Every exception attnwatch raises on purpose, under one base class.

Bad *messages* are not exceptions: they become dead-letter records (see
``pipeline.schema.DecodeError``).  These are for misconfiguration and for the
process's own failures.
"""

from __future__ import annotations


class AttnwatchError(Exception):
    """Base class of attnwatch's own errors."""


class ConfigError(AttnwatchError):
    """The configuration is invalid or incomplete."""


class StoreError(AttnwatchError):
    """The analyst store could not be opened or written."""


class ModelError(AttnwatchError):
    """A saved model is missing, incomplete or incompatible."""
