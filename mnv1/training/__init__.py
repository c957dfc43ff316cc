"""One training run: the run itself, its recipe, callbacks, BatchNorm handling, checkpoints,
strategy, process bootstrap and the worker entry point that runs it as its own process."""
