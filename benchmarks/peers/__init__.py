"""Peer libraries doing each case's job: statsmodels, Dask, Spark MLlib."""

__all__: list[str] = []
