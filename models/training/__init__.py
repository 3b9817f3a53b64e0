"""Training, split as in SetFit.

The ``trainer`` loop, its typed ``training_args``, the optimiser and schedule, batch sampling,
weight averaging, regularisation, distillation, resumable state and the model card filled in
while training runs. May import the inference core, ``models.data``, ``models.evaluation``
and ``models.explain``.
"""
