"""Named studies, one YAML file each, registered as the Hydra group ``experiment``."""
