"""Small TFDS builders used by the data tests (a package: TFDS resolves builder resources by it)."""
