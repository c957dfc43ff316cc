"""mnv1's Hydra launchers for clusters: SLURM through submitit (``slurm``) and a running Ray
cluster (``ray``), what they share (``cluster_jobs``: a cell's GPU request, settling a cell whose
job died), the check that stops a sweep before it starts when the cluster does not answer
(``cluster_check``), and the shims that name the launchers where Hydra looks for them
(``hydra_plugin``, installed as ``hydra_plugins.mnv1_launchers``).

Part of the command-line boundary with ``mnv1.cli`` and ``mnv1.hydra_app``.
"""
