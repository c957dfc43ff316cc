"""``hydra/launcher=slurm``'s class (``mnv1.cli.slurm_launcher``; see the package docstring)."""

try:
    from mnv1.cli.slurm_launcher import SlurmLauncher as _SlurmLauncher
except ImportError:  # hydra-submitit-launcher is not installed: no such launcher
    pass
else:

    class SlurmLauncher(_SlurmLauncher):
        """Cells as SLURM array tasks through submitit."""
