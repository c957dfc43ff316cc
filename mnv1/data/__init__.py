"""Input data: TFDS sources (named datasets, image folders, the embedded synthetic set).

Public entry points (all take a ``DataConfig``):

* ``mnv1.data.check.problems``: what is wrong with a config; pure Python, no TensorFlow.
* ``mnv1.data.prepare.prepare``: build the dataset into ``data_dir`` once (file-locked).
* ``mnv1.data.preflight.preflight``: prepared, ≥ 2 classes, decodable; returns the fingerprint.
* ``mnv1.data.pipeline.load_datasets``: the train/validation ``tf.data`` pipelines at one ρ.

Importing this package imports nothing heavy: each module pulls in TensorFlow only if it needs it.
"""
