"""``hydra/launcher=ray_cluster``'s class (``mnv1.launchers.ray``; see the package docstring)."""

try:
    from mnv1.launchers.ray import RayClusterLauncher as _RayClusterLauncher
except ImportError:  # hydra-ray-launcher is not installed: no such launcher
    pass
else:

    class RayClusterLauncher(_RayClusterLauncher):
        """Cells as Ray tasks on a running Ray cluster."""
