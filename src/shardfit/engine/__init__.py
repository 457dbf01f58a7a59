"""Running tasks on every partition and merging their statistics."""

from shardfit.engine.merge import tree_merge
from shardfit.engine.run import run_pass

__all__ = ["run_pass", "tree_merge"]
