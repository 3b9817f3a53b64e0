"""Privacy: redaction of customer identifiers before anything is classified, stored or sent.

:class:`~pipeline.privacy.redact.Redactor` finds payment cards, IBANs, sort codes and account
numbers, emails, phone numbers, national ids, names and street addresses in text and
replaces each with a typed placeholder (``[CARD]``, ``[IBAN]``, ...); phone numbers by
layout in :mod:`~pipeline.privacy.phones`, spelled-out and wrapped numbers through the
normalised copy of :mod:`~pipeline.privacy.normalise`.  Shared layer: imports
nothing from ``pipeline`` but the shared base modules (``schema``).
"""

from pipeline.privacy.policy import PrivacyPolicy, move_attention
from pipeline.privacy.redact import KINDS, Finding, Redacted, Redactor

__all__ = ["KINDS", "Finding", "PrivacyPolicy", "Redacted", "Redactor", "move_attention"]
