"""Whether the logged attention words really drive the decision.

ERASER comprehensiveness and sufficiency against random words and gradient x input
(``faithfulness``, ``attnwatch explain-eval``), and of long news's article-level words
through the sentence path (``article``, ``attnwatch explain-eval --articles``). May import
the inference core, ``models.data`` and ``models.evaluation``; not ``training``.
"""
