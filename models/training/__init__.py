"""Training, split as in SetFit.

The ``trainer`` loop, its typed ``training_args``, the tasks and validation ``splits``, the
optimiser and schedule, batch sampling, weight averaging, regularisation, distillation,
resumable state, the ``trust`` check of the logged attention and the model card filled in
while training runs. May import the inference core, ``models.data``, ``models.evaluation``
and ``models.explain``.
"""
