"""shardfit's benchmark suite: ``python -m benchmarks run [--quick|--full]``.

Every case is measured side by side with the physical limit (pyarrow and BLAS alone)
and with peer libraries, each (case, tool, size) in a process of its own, and written to
``benchmarks/RESULTS.md``. Cases are registered in :mod:`benchmarks.registry`; one
module per case family (:mod:`benchmarks.linear`), shaped like scikit-learn's asv
benchmarks (``make_data``, ``make_estimator``).
"""

__all__: list[str] = []
