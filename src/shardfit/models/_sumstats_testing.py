"""Summary-statistic models for tests and examples.

They live in the package (not in tests/) so that spawned worker processes and Dask
workers can import them by name.
"""

from __future__ import annotations

from typing import Any

from shardfit.models.sumstats import SumstatsModel, require_jax

__all__ = ["GaussianModel", "HistogramModel"]


class GaussianModel(SumstatsModel):
    """Weighted normal log-likelihood of column ``x`` with weights ``w``.

    params ``(mu, log_sigma)``; statistics ``(Σ w, Σ w (x - mu)² / σ², Σ w log σ)``,
    which depend on both parameters (a loss sees only statistics), so the gradient
    goes through their Jacobian. The loss is the negative log-likelihood
    ``Σ w [log σ + (x - mu)² / (2σ²) + log(2π)/2]``.
    """

    param_names = ("mu", "log_sigma")

    def __init__(self, data: Any, *, partition_rows: int | None = None) -> None:
        super().__init__(data, ("x", "w"), partition_rows=partition_rows)

    def partial_sumstats(self, params: Any, data: dict[str, Any]) -> Any:
        _, jnp = require_jax()
        w, x = data["w"], data["x"]
        mu, log_sigma = params[0], params[1]
        return jnp.stack(
            [
                jnp.sum(w),
                jnp.sum(w * (x - mu) ** 2) * jnp.exp(-2.0 * log_sigma),
                jnp.sum(w) * log_sigma,
            ]
        )

    def loss(self, sumstats: Any) -> Any:
        _, jnp = require_jax()
        return 0.5 * sumstats[1] + sumstats[2] + 0.5 * jnp.log(2.0 * jnp.pi) * sumstats[0]


class HistogramModel(SumstatsModel):
    """A smoothed histogram of ``shift + scale * x`` against a target (multigrad-like).

    Each row adds ``Φ((e_{j+1} - y)/h) - Φ((e_j - y)/h)`` to bin ``j`` (``e`` the bin
    edges, ``h`` the smoothing width, both in ``aux``), plus 1 to a row count; the loss
    is the mean squared difference between the normalized histogram and
    ``aux["target"]``.
    """

    param_names = ("shift", "scale")

    def partial_sumstats(self, params: Any, data: dict[str, Any]) -> Any:
        jax, jnp = require_jax()
        edges = jnp.asarray(self.aux["edges"])
        y = params[0] + params[1] * data["x"]
        cdf = jax.scipy.stats.norm.cdf((edges[None, :] - y[:, None]) / self.aux["width"])
        counts = jnp.sum(cdf[:, 1:] - cdf[:, :-1], axis=0)
        return jnp.concatenate([jnp.sum(jnp.ones_like(y))[None], counts])

    def loss(self, sumstats: Any) -> Any:
        _, jnp = require_jax()
        hist = sumstats[1:] / sumstats[0]
        return jnp.mean((hist - jnp.asarray(self.aux["target"])) ** 2)
