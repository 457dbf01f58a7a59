"""Streaming learning on hashed features, progressive validation and parallel model search.

- :class:`HashingFeaturizer`: numeric and categorical columns and their interactions,
  hashed column by column into a SciPy CSR matrix with a stable hash.
- :class:`FTRLClassifier`, :class:`FTRLRegressor`: compiled online linear learners
  (FTRL-Proximal, AdaGrad) on CSR batches.
- :func:`stream_fit`: drive any ``partial_fit`` estimator through a source's batches,
  scoring each batch before training on it, against a running-mean benchmark.
- :func:`search`: fit many configurations in parallel, each unit of work reading each
  batch once for all its configurations, into a crash-safe SQLite store
  (:func:`open_store`).
"""

# Nothing is imported here: the public names are re-exported lazily by ``shardfit``
# (``shardfit.HashingFeaturizer``, ``shardfit.search``…), so a worker that needs only
# the featurizer does not import numba, the store or the search driver.
