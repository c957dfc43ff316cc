"""A sweep of runs: validation of the whole grid, run keys, the orchestrator that runs each cell
as its own process, GPU slots, and the sweep's start and end."""
