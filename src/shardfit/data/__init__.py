"""Sources and partitions."""
