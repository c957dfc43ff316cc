"""``hydra/launcher=ray_cluster``'s class (``mnv1.cli.ray_launcher``; see the package docstring)."""

from importlib.util import find_spec

if find_spec("hydra_plugins.hydra_ray_launcher") is not None:
    from mnv1.cli.ray_launcher import RayClusterLauncher as _RayClusterLauncher

    class RayClusterLauncher(_RayClusterLauncher):
        """Cells as Ray tasks on a running Ray cluster."""
