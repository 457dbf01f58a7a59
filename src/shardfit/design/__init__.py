"""Formula designs learned in a schema pass."""
