"""``hydra/launcher=slurm``'s class (``mnv1.launchers.slurm``; see the package docstring)."""

try:
    from mnv1.launchers.slurm import SlurmLauncher as _SlurmLauncher
except ImportError:  # hydra-submitit-launcher is not installed: no such launcher
    pass
else:

    class SlurmLauncher(_SlurmLauncher):
        """Cells as SLURM array tasks through submitit."""
