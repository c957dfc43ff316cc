"""The deploy-side trade-off of one cell: LiteRT flatbuffers, int8 accuracy and CPU latency.

``convert`` turns a Keras model into float32 and full-integer int8 flatbuffers, ``runtime``
runs and times them in the LiteRT interpreter, and ``cell`` does both for a trained cell and
logs the results through the run log.
"""
