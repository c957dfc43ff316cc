"""``hydra/launcher=slurm``'s class (``mnv1.cli.slurm_launcher``; see the package docstring)."""

from importlib.util import find_spec

if find_spec("hydra_plugins.hydra_submitit_launcher") is not None:
    from mnv1.cli.slurm_launcher import SlurmLauncher as _SlurmLauncher

    class SlurmLauncher(_SlurmLauncher):
        """Cells as SLURM array tasks through submitit."""
