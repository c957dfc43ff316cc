"""mnv1: reproduce MobileNetV1's width × resolution trade-off as tracked sweeps.

Importing this package must stay cheap and must not initialise TensorFlow: the config validator
and the sweep orchestrator run before any device is configured (see ``mnv1.training.bootstrap``).
Its subpackages form layers, each importing only from those below (``.importlinter``; README,
Development).
"""

__version__ = "0.1.0"
