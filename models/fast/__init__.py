"""Faster runtimes and smaller models behind the same ``TextClassifier`` interface.

``onnx_export`` writes a torch model directory as a verified ONNX model directory (fp32 or
dynamic int8), ``onnx_runtime`` classifies with it on ONNX Runtime, ``loading`` opens either
kind of directory (``open_classifier``), and ``layers`` makes the shallower encoder of a
distilled student.  Nothing is imported here, so using one module does not load the others'
dependencies (onnxruntime).  It may import the core of ``models`` (``classifier``,
``inference``, ``saving``, ...), never ``training``, ``evaluation`` or the pipeline.
"""
