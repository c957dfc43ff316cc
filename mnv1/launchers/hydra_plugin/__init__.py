"""mnv1's Hydra launchers, where Hydra looks for them.

Hydra instantiates a launcher only from a class defined under the ``hydra_plugins`` namespace
package, which it scans at start-up. The code lives in ``mnv1/launchers`` (``slurm.py``,
``ray.py``); the modules here only name those classes under this package, and only
when the plugin each one builds on is installed (``pip install 'mnv1[slurm]'``,
``'mnv1[ray]'``), so a machine without an extra sees no import warning from the scan.
"""
