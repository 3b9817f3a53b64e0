"""The attention classifier, knowing nothing of Kafka, the store or the pipeline.

The inference core is flat: ``attention`` (learned-query pooling), ``encoding``
(tokenisation and masks), ``words`` (word pieces to words), ``modeling`` (encoder +
heads), ``saving`` (the model directory), ``weight_files`` (safetensors only, pickles
refused), ``classifier`` (the ``TextClassifier`` interface), ``inference`` (batched inference
shared by the runtimes), ``torch_thread`` (every torch computation of a process on one
thread) and ``long_text`` (long news, in one place: sentences, bounded forward passes,
aggregation).  Around it, each subpackage imports
the core and what is listed before it, never the reverse:

- ``data``: labelled examples, the seed data and readers of public data sets;
- ``evaluation``: metrics, reports, calibration, ``attnwatch evaluate``;
- ``explain``: faithfulness of the logged attention words;
- ``fast``: faster runtimes and smaller models behind the same interface (ONNX Runtime
  export and classifier, fp32 and dynamic int8; layer dropping for distilled students);
- ``training``: the trainer, its arguments, optimiser, sampling and model card.
"""
