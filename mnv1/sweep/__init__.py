"""A sweep of runs: validation of the whole grid, the orchestrator that runs each cell as its own
process, GPU slots, and the sweep's start and end. Run keys (``mnv1.run_key``) and the worker's
process contract (``mnv1.worker_contract``) sit below this package and ``mnv1.training`` alike."""
