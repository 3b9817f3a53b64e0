"""Whether the logged attention words really drive the decision.

ERASER comprehensiveness and sufficiency against random words and gradient x input
(``attnwatch explain-eval``). May import the inference core, ``models.data`` and
``models.evaluation``; not ``training``.
"""
