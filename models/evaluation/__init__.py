"""How good a model is.

Accuracy and macro-F1, classification reports and confusion matrices, temperature calibration
and the unknown-intent threshold, ``attnwatch evaluate``. May import the inference core and
``models.data``; not ``training`` or ``explain``.
"""
