"""The Hydra application behind ``mnv1-train``, ``mnv1-plan`` and ``mnv1-tune``: the schema and
studies in Hydra's ConfigStore (``store``), the expansion and up-front validation of a grid
(``grid``), the sweeper that composes and validates a grid once and launches it (``sweeper``),
and what brackets a launch: the sweep's parent run, its state, the single run's callback
(``callbacks``).

With ``mnv1.cli`` and ``mnv1.launchers`` this is the command-line boundary, the only code that
imports Hydra or OmegaConf; everything below it takes the typed ``mnv1.config.RunConfig``.
"""
