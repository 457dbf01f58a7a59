"""Exponential-family distributions of generalized linear models.

Each family reproduces ``statsmodels.genmod.families`` formula for formula (variance
functions, unit deviances, log-likelihoods, start values, clipping), so a shardfit GLM
equals statsmodels' to rounding. Weights are statsmodels' ``var_weights``: the unit
deviance, the log-likelihood and the IRLS weights of a row are multiplied by its
weight (the variance of a row is ``scale * V(mu) / weight``). A binomial proportion
``y = successes / trials`` with ``weights = trials`` is the binomial of ``trials``
draws, and its log-likelihood (so ``llf``, ``aic``, ``bic``) is that of the counts, as
in R's ``glm`` and statsmodels' two-column ``(successes, failures)`` form; statsmodels'
``var_weights`` form reports another number for proportions.

Use :func:`get_family` to build one from names::

    get_family("binomial", "probit")
    get_family("negative_binomial", alpha=0.5)
    get_family("tweedie", var_power=1.5)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
from scipy import special

from shardfit.errors import ResponseError
from shardfit.models.links import (
    LINKS,
    Cauchy,
    CLogLog,
    Identity,
    InversePower,
    InverseSquared,
    Link,
    Log,
    LogC,
    Logit,
    LogLog,
    NegativeBinomialLink,
    Power,
    Probit,
    Sqrt,
)

__all__ = [
    "FAMILIES",
    "Binomial",
    "Family",
    "Gamma",
    "Gaussian",
    "InverseGaussian",
    "Link",
    "NegativeBinomial",
    "Poisson",
    "ResponseError",
    "Tweedie",
    "get_family",
]

FLOAT_EPS = float(np.finfo(float).eps)


def _clean(x: np.ndarray) -> np.ndarray:
    return np.clip(x, FLOAT_EPS, np.inf)


def _binary(y: Any) -> bool:
    y = np.asarray(y)
    return bool(np.all((y == 0) | (y == 1)))


def _w(weights: Any) -> Any:
    return 1.0 if weights is None else weights


class Family(ABC):
    """A GLM family: variance function, deviance and log-likelihood, with a link.

    Attributes
    ----------
    name : str
        The name :func:`get_family` knows it by.
    link : Link
        The link function.
    free_scale : bool
        Whether the scale (dispersion) is estimated (Pearson chi2 / df_resid) rather
        than fixed at 1.
    start_needs_mean : bool
        Whether the IRLS start values use the mean of all responses
        (:meth:`starting_mu_given_mean`).
    """

    name: str = ""
    free_scale: bool = True
    start_needs_mean: bool = True
    default_link: type[Link] = Identity
    valid_links: tuple[type[Link], ...] = ()
    support: str = "finite values"

    def __init__(self, link: Link | None = None) -> None:
        link = self.default_link() if link is None else link
        if not isinstance(link, Link):
            raise TypeError(f"link must be a shardfit Link; got {link!r}")
        if not isinstance(link, self.valid_links):
            valid = sorted(n for n, c in LINKS.items() if issubclass(c, self.valid_links))
            raise ValueError(
                f"The {link.name!r} link is not valid for the {self.name} family; "
                f"valid links: {valid}"
            )
        self.link = link

    # -- the distribution ------------------------------------------------------------
    @abstractmethod
    def variance(self, mu: np.ndarray) -> np.ndarray:
        """The variance function ``V(mu)``."""

    @abstractmethod
    def variance_deriv(self, mu: np.ndarray) -> np.ndarray:
        """``V'(mu)``."""

    @abstractmethod
    def unit_deviance(self, y: np.ndarray, mu: np.ndarray) -> np.ndarray:
        """Unit deviances ``d(y, mu)`` of each row (unweighted)."""

    @abstractmethod
    def loglike_obs(
        self, y: np.ndarray, mu: np.ndarray, weights: Any = None, scale: float = 1.0
    ) -> np.ndarray:
        """Log-likelihood of each row."""

    @abstractmethod
    def _outside(self, y: np.ndarray) -> np.ndarray:
        """Mask of response values outside the support."""

    # -- derived quantities ----------------------------------------------------------
    def starting_mu(self, y: np.ndarray) -> np.ndarray:
        """statsmodels' IRLS start ``(y + mean(y)) / 2`` (a binomial overrides it).

        A distributed fit passes the global mean via :meth:`starting_mu_given_mean`.
        """
        return self.starting_mu_given_mean(y, float(np.mean(y)))

    def starting_mu_given_mean(self, y: np.ndarray, mean: float) -> np.ndarray:
        """The start from ``y`` and the (unweighted) mean of all responses."""
        return (y + mean) / 2.0

    def unit_deviance_given(self, y: np.ndarray, mu: np.ndarray, *, binary: bool) -> np.ndarray:
        """:meth:`unit_deviance` when whether every ``y`` is 0 or 1 is already known
        (the IRLS passes check it once per partition, not once per block)."""
        return self.unit_deviance(y, mu)

    def deriv_and_variance(self, mu: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        """``g'(mu)`` and ``V(mu)``; ``g'(mu)`` is ``None`` where it is ``1 / V(mu)``
        computed from the same clipped ``mu`` (a canonical link), which an IRLS step
        then need not evaluate."""
        return self.link.deriv(mu), self.variance(mu)

    def irls_weights(self, mu: np.ndarray) -> np.ndarray:
        """IRLS weights ``1 / (g'(mu)**2 V(mu))`` before the prior weights."""
        return 1.0 / (self.link.deriv(mu) ** 2 * self.variance(mu))

    def deviance(self, y: np.ndarray, mu: np.ndarray, weights: Any = None) -> float:
        """Sum of weighted unit deviances (``var_weights`` like statsmodels)."""
        return float(np.sum(self.unit_deviance(y, mu) * _w(weights)))

    def resid_dev(self, y: np.ndarray, mu: np.ndarray, weights: Any = None) -> np.ndarray:
        """Deviance residuals ``sign(y - mu) sqrt(w d(y, mu))``."""
        dev = self.unit_deviance(y, mu) * _w(weights)
        return np.sign(y - mu) * np.sqrt(np.clip(dev, 0.0, np.inf))

    def pearson_chi2(self, y: np.ndarray, mu: np.ndarray, weights: Any = None) -> float:
        """``sum(w (y - mu)**2 / V(mu))``."""
        return float(np.sum((y - mu) ** 2 * _w(weights) / self.variance(mu)))

    def resid_anscombe(
        self, y: np.ndarray, mu: np.ndarray, weights: Any = None, scale: float = 1.0
    ) -> np.ndarray:
        """Anscombe residuals ``(A(y) - A(mu)) / (A'(mu) sqrt(V(mu) scale)) sqrt(w)``
        with ``A'(t) = V(t)**(-1/3)``: statsmodels' ``family.resid_anscombe``, formula
        for formula (each family defines its ``A``)."""
        raise NotImplementedError(f"the {self.name} family has no Anscombe residuals")

    def loglike(
        self,
        y: np.ndarray,
        mu: np.ndarray,
        weights: Any = None,
        scale: float = 1.0,
        freq: Any = None,
    ) -> float:
        """The log-likelihood (sum over rows, each counted ``freq`` times: statsmodels'
        ``freq_weights``; ``weights`` are its ``var_weights``)."""
        ll = self.loglike_obs(y, mu, weights, scale)
        return float(np.sum(ll if freq is None else ll * freq))

    def null_deviance_at(
        self, y: np.ndarray, weights: Any, null_mu: float, *, binary: bool
    ) -> float:
        """The deviance of the constant fitted value ``null_mu`` (``binary``: whether
        every ``y`` is 0 or 1, as for :meth:`unit_deviance_given`)."""
        unit = self.unit_deviance_given(y, np.full(y.shape, null_mu), binary=binary)
        return float(np.sum(unit * _w(weights)))

    def loglike_given_deviance(
        self,
        y: np.ndarray,
        mu: np.ndarray,
        weights: Any,
        scale: float,
        deviance: float,
        *,
        binary: bool,
        freq: Any = None,
    ) -> float:
        """:meth:`loglike` at ``mu``, whose deviance is known (some families derive
        one from the other without another pass over the rows); ``deviance`` is
        weighted by ``freq`` too."""
        return self.loglike(y, mu, weights, scale, freq)

    def check_response(self, y: np.ndarray, where: str = "") -> None:
        """Raise :class:`ResponseError` naming the first value outside the support.

        Parameters
        ----------
        y : ndarray
            Responses.
        where : str
            Where ``y`` comes from, e.g. ``"partition p3"``; row numbers are positions
            in ``y``.
        """
        bad = self._outside(np.asarray(y, dtype=np.float64))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            place = f" in {where}" if where else ""
            raise ResponseError(
                f"response outside the support of the {self.name} family ({self.support})"
                f"{place}, row {row}: {float(y[row])!r} ({int(bad.sum())} such rows)"
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(link={self.link!r})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash((type(self).__name__, repr(self)))

    def params(self) -> dict[str, float]:
        """Parameters besides the link (``alpha``, ``var_power``), for save/load."""
        return {}


class Gaussian(Family):
    """Normal responses; identity link by default; scale estimated."""

    name = "gaussian"
    default_link = Identity
    valid_links = (Log, Identity, InversePower)

    def variance(self, mu: np.ndarray) -> np.ndarray:
        return np.ones(np.shape(mu), np.float64)

    def variance_deriv(self, mu: np.ndarray) -> np.ndarray:
        return np.zeros(np.shape(mu), np.float64)

    def unit_deviance(self, y: np.ndarray, mu: np.ndarray) -> np.ndarray:
        return (y - mu) ** 2

    def loglike_obs(
        self, y: np.ndarray, mu: np.ndarray, weights: Any = None, scale: float = 1.0
    ) -> np.ndarray:
        w = _w(weights)
        ll = -w * (y - mu) ** 2 / scale - np.log(scale / w) - np.log(2 * np.pi)
        return ll / 2

    def _outside(self, y: np.ndarray) -> np.ndarray:
        return ~np.isfinite(y)

    def resid_anscombe(
        self, y: np.ndarray, mu: np.ndarray, weights: Any = None, scale: float = 1.0
    ) -> np.ndarray:
        return (y - mu) / scale**0.5 * np.sqrt(_w(weights))


class Binomial(Family):
    """0/1 responses, or proportions with trial counts as weights; logit by default."""

    name = "binomial"
    free_scale = False
    start_needs_mean = False
    default_link = Logit
    valid_links = (Logit, Probit, Cauchy, Log, LogC, CLogLog, LogLog, Identity)
    support = "0 <= y <= 1"

    def starting_mu_given_mean(self, y: np.ndarray, mean: float) -> np.ndarray:
        return (y + 0.5) / 2

    def variance(self, mu: np.ndarray) -> np.ndarray:
        p = np.clip(mu, FLOAT_EPS, 1 - FLOAT_EPS)
        return p * (1 - p)

    def deriv_and_variance(self, mu: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        # The logit's g'(mu) is 1 / (p (1 - p)) with the variance's clipped p.
        if isinstance(self.link, Logit):
            return None, self.variance(mu)
        return super().deriv_and_variance(mu)

    def variance_deriv(self, mu: np.ndarray) -> np.ndarray:
        return 1 - 2 * np.clip(mu, FLOAT_EPS, 1 - FLOAT_EPS)

    def unit_deviance(self, y: np.ndarray, mu: np.ndarray) -> np.ndarray:
        return self.unit_deviance_given(y, mu, binary=_binary(y))

    def unit_deviance_given(self, y: np.ndarray, mu: np.ndarray, *, binary: bool) -> np.ndarray:
        if binary:
            # The same numbers for 0/1 responses (the other term is exactly -0.0), at
            # half the cost: one log a row.
            # mu where y = 1, 1 - mu where y = 0, exactly (branch-free: faster than where)
            odds = mu * y
            odds += (1.0 - mu) * (1.0 - y)
            odds += 1e-20
            np.log(odds, out=odds)
            odds *= -2.0
            return odds
        y_mu = _clean(y / (mu + 1e-20))
        n_y_mu = _clean((1.0 - y) / (1.0 - mu + 1e-20))
        return 2 * (y * np.log(y_mu) + (1 - y) * np.log(n_y_mu))

    def null_deviance_at(
        self, y: np.ndarray, weights: Any, null_mu: float, *, binary: bool
    ) -> float:
        if not binary:
            return super().null_deviance_at(y, weights, null_mu, binary=binary)
        # The unit deviance of a 0/1 response is -2 log(m + 1e-20) or -2 log(1 - m + 1e-20).
        ones = float(y.sum() if weights is None else y @ weights)
        total = float(y.size if weights is None else np.sum(weights))
        return -2.0 * (
            ones * float(np.log(null_mu + 1e-20))
            + (total - ones) * float(np.log(1.0 - null_mu + 1e-20))
        )

    def loglike_given_deviance(
        self,
        y: np.ndarray,
        mu: np.ndarray,
        weights: Any,
        scale: float,
        deviance: float,
        *,
        binary: bool,
        freq: Any = None,
    ) -> float:
        if binary:  # log(mu + 1e-20) or log(1 - mu + 1e-20) a row: minus half its deviance
            return -0.5 * deviance
        return super().loglike_given_deviance(
            y, mu, weights, scale, deviance, binary=binary, freq=freq
        )

    def loglike_obs(
        self, y: np.ndarray, mu: np.ndarray, weights: Any = None, scale: float = 1.0
    ) -> np.ndarray:
        n = _w(weights)  # trials of a proportion
        ll = n * (y * np.log((mu + 1e-20) / (1 - mu + 1e-20)) + np.log(1 - mu + 1e-20))
        if not _binary(y):  # the binomial coefficients are exactly 0 for 0/1 responses
            # A proportion y of n = weight trials: log C(n, n y), the binomial of the
            # counts (R's glm; statsmodels' two-column form). statsmodels' var_weights
            # form adds n * log C(1, y) instead, which is no distribution's likelihood
            # (on its Star98 data: -110686, where R and the two-column form: -2998.6).
            successes = n * y
            ll = ll + (
                special.gammaln(n + 1)
                - special.gammaln(successes + 1)
                - special.gammaln(n - successes + 1)
            )
        return ll

    def _outside(self, y: np.ndarray) -> np.ndarray:
        return ~((y >= 0) & (y <= 1))

    def resid_anscombe(
        self, y: np.ndarray, mu: np.ndarray, weights: Any = None, scale: float = 1.0
    ) -> np.ndarray:
        # statsmodels' var_weights form (its n is 1): cox_snell(x) = B(2/3, 2/3; x).
        def cox_snell(x: np.ndarray) -> np.ndarray:
            return special.betainc(2 / 3.0, 2 / 3.0, x) * special.beta(2 / 3.0, 2 / 3.0)

        resid = (cox_snell(y) - cox_snell(mu)) / (mu * (1 - mu) * scale**3) ** (1 / 6.0)
        return resid * np.sqrt(_w(weights))


class Poisson(Family):
    """Counts; log link by default; scale 1."""

    name = "poisson"
    free_scale = False
    default_link = Log
    valid_links = (Log, Identity, Sqrt)
    support = "y >= 0"

    def variance(self, mu: np.ndarray) -> np.ndarray:
        return np.fabs(mu)

    def deriv_and_variance(self, mu: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        # The log link's g'(mu) = 1 / max(mu, eps) is 1 / V(mu) unless some mu < eps.
        variance = self.variance(mu)
        if isinstance(self.link, Log) and (mu.size == 0 or float(mu.min()) >= FLOAT_EPS):
            return None, variance
        return self.link.deriv(mu), variance

    def variance_deriv(self, mu: np.ndarray) -> np.ndarray:
        return np.where(mu < 0, -1.0, 1.0)

    def unit_deviance(self, y: np.ndarray, mu: np.ndarray) -> np.ndarray:
        return 2 * (y * np.log(_clean(y / mu)) - (y - mu))

    def loglike_obs(
        self, y: np.ndarray, mu: np.ndarray, weights: Any = None, scale: float = 1.0
    ) -> np.ndarray:
        return _w(weights) / scale * (y * np.log(mu) - mu - special.gammaln(y + 1))

    def resid_anscombe(
        self, y: np.ndarray, mu: np.ndarray, weights: Any = None, scale: float = 1.0
    ) -> np.ndarray:
        resid = (3 / 2.0) * (y ** (2 / 3.0) - mu ** (2 / 3.0)) / (mu ** (1 / 6.0) * scale**0.5)
        return resid * np.sqrt(_w(weights))

    def _outside(self, y: np.ndarray) -> np.ndarray:
        return ~((y >= 0) & np.isfinite(y))


class Gamma(Family):
    """Positive responses with constant coefficient of variation; inverse link default."""

    name = "gamma"
    default_link = InversePower
    valid_links = (Log, Identity, InversePower)
    support = "y > 0"

    def variance(self, mu: np.ndarray) -> np.ndarray:
        return np.power(np.fabs(mu), 2.0)

    def variance_deriv(self, mu: np.ndarray) -> np.ndarray:
        return 2.0 * mu

    def unit_deviance(self, y: np.ndarray, mu: np.ndarray) -> np.ndarray:
        return 2 * (-np.log(_clean(y / mu)) + (y - mu) / mu)

    def loglike_obs(
        self, y: np.ndarray, mu: np.ndarray, weights: Any = None, scale: float = 1.0
    ) -> np.ndarray:
        y_mu = _clean(y / mu)
        ws = _w(weights) / scale
        return ws * np.log(ws * y_mu) - ws * y_mu - special.gammaln(ws) - np.log(y)

    def resid_anscombe(
        self, y: np.ndarray, mu: np.ndarray, weights: Any = None, scale: float = 1.0
    ) -> np.ndarray:
        resid = 3 * (y ** (1 / 3.0) - mu ** (1 / 3.0)) / mu ** (1 / 3.0) / scale**0.5
        return resid * np.sqrt(_w(weights))

    def _outside(self, y: np.ndarray) -> np.ndarray:
        return ~((y > 0) & np.isfinite(y))


class InverseGaussian(Family):
    """Positive responses with ``V(mu) = mu**3``; inverse-squared link by default."""

    name = "inverse_gaussian"
    default_link = InverseSquared
    valid_links = (InverseSquared, InversePower, Identity, Log)
    support = "y > 0"

    def variance(self, mu: np.ndarray) -> np.ndarray:
        return np.power(np.fabs(mu), 3.0)

    def variance_deriv(self, mu: np.ndarray) -> np.ndarray:
        return 3.0 * np.fabs(mu) ** 2 * np.where(mu < 0, -1.0, 1.0)

    def unit_deviance(self, y: np.ndarray, mu: np.ndarray) -> np.ndarray:
        return 1.0 / (y * mu**2) * (y - mu) ** 2

    def loglike_obs(
        self, y: np.ndarray, mu: np.ndarray, weights: Any = None, scale: float = 1.0
    ) -> np.ndarray:
        w = _w(weights)
        ll = -w * (y - mu) ** 2 / (scale * y * mu**2)
        ll += -np.log(scale * y**3 / w) - np.log(2 * np.pi)
        return ll / 2

    def resid_anscombe(
        self, y: np.ndarray, mu: np.ndarray, weights: Any = None, scale: float = 1.0
    ) -> np.ndarray:
        return np.log(y / mu) / np.sqrt(mu * scale) * np.sqrt(_w(weights))

    def _outside(self, y: np.ndarray) -> np.ndarray:
        return ~((y > 0) & np.isfinite(y))


class NegativeBinomial(Family):
    """Counts with ``V(mu) = mu + alpha mu**2`` for a fixed ``alpha``; log link default."""

    name = "negative_binomial"
    free_scale = False
    default_link = Log
    valid_links = (Log, CLogLog, Identity, NegativeBinomialLink, Power)
    support = "y >= 0"

    def __init__(self, link: Link | None = None, alpha: float = 1.0) -> None:
        if not (np.isfinite(alpha) and alpha > 0):
            raise ValueError(
                f"The 'alpha' parameter of NegativeBinomial must be a float in (0, inf). "
                f"Got {alpha!r} instead."
            )
        self.alpha = float(alpha)
        super().__init__(link)

    def variance(self, mu: np.ndarray) -> np.ndarray:
        p = _clean(mu)
        return p + self.alpha * p**2

    def variance_deriv(self, mu: np.ndarray) -> np.ndarray:
        return 1 + 2 * self.alpha * _clean(mu)

    def unit_deviance(self, y: np.ndarray, mu: np.ndarray) -> np.ndarray:
        y_alpha = y + 1 / self.alpha
        mu_alpha = mu + 1 / self.alpha
        dev = y * np.log(_clean(y / mu)) - y_alpha * np.log(y_alpha / mu_alpha)
        return 2 * dev

    def loglike_obs(
        self, y: np.ndarray, mu: np.ndarray, weights: Any = None, scale: float = 1.0
    ) -> np.ndarray:
        a = self.alpha
        ll = y * np.log(a * mu) - (y + 1 / a) * np.log(1 + a * mu)
        ll += special.gammaln(y + 1 / a) - special.gammaln(1 / a) - special.gammaln(y + 1)
        return _w(weights) / scale * ll

    def resid_anscombe(
        self, y: np.ndarray, mu: np.ndarray, weights: Any = None, scale: float = 1.0
    ) -> np.ndarray:
        def hyp2f1(x: np.ndarray) -> np.ndarray:
            return special.hyp2f1(2 / 3.0, 1 / 3.0, 5 / 3.0, x)

        a = self.alpha
        resid = (
            3
            / 2.0
            * (y ** (2 / 3.0) * hyp2f1(-a * y) - mu ** (2 / 3.0) * hyp2f1(-a * mu))
            / (mu * (1 + a * mu) * scale**3) ** (1 / 6.0)
        )
        return resid * np.sqrt(_w(weights))

    def _outside(self, y: np.ndarray) -> np.ndarray:
        return ~((y >= 0) & np.isfinite(y))

    def params(self) -> dict[str, float]:
        return {"alpha": self.alpha}

    def __repr__(self) -> str:
        return f"NegativeBinomial(link={self.link!r}, alpha={self.alpha!r})"


class Tweedie(Family):
    """``V(mu) = mu**var_power``; log link by default; scale estimated.

    The log-likelihood is exact (series of Wright's Bessel function) for
    ``1 < var_power < 2``, Poisson's at 1, Gamma's at 2, and NaN otherwise, as in
    statsmodels.
    """

    name = "tweedie"
    default_link = Log
    valid_links = (Log, Power)
    support = "y >= 0"

    def __init__(self, link: Link | None = None, var_power: float = 1.0) -> None:
        if not np.isfinite(var_power):
            raise ValueError(
                f"The 'var_power' parameter of Tweedie must be finite. Got {var_power!r}."
            )
        self.var_power = float(var_power)
        # The support follows the power: var_power 0 is the normal (any real y); above
        # 2, y**(2 - var_power) in the unit deviance is infinite at y = 0, so zeros
        # would only surface later as "the deviance at the start values is not
        # finite" (statsmodels fits on to an infinite deviance and NaN log-likelihood).
        # At exactly 2, zeros stay allowed: statsmodels clips them to FLOAT_EPS, and so
        # does unit_deviance.
        if self.var_power == 0:
            self.support = "finite values, var_power=0"
        elif self.var_power > 2:
            self.support = f"y > 0 when var_power={self.var_power:g} > 2"
        super().__init__(link)

    def variance(self, mu: np.ndarray) -> np.ndarray:
        return np.power(np.fabs(mu), self.var_power)

    def variance_deriv(self, mu: np.ndarray) -> np.ndarray:
        p = self.var_power
        return p * np.fabs(mu) ** (p - 1) * np.where(mu < 0, -1.0, 1.0)

    def unit_deviance(self, y: np.ndarray, mu: np.ndarray) -> np.ndarray:
        p = self.var_power
        with np.errstate(divide="ignore", invalid="ignore"):
            if p == 1:
                dev = np.where(y == 0, mu, y * np.log(y / mu) + (mu - y))
            elif p == 2:
                dev = ((y - mu) / mu) - np.log(_clean(y) / mu)
            else:
                dev = (
                    y ** (2 - p) / ((1 - p) * (2 - p))
                    - y * mu ** (1 - p) / (1 - p)
                    + mu ** (2 - p) / (2 - p)
                )
        return 2 * dev

    def loglike_obs(
        self, y: np.ndarray, mu: np.ndarray, weights: Any = None, scale: float = 1.0
    ) -> np.ndarray:
        p = self.var_power
        y = np.atleast_1d(np.asarray(y, dtype=np.float64))
        if p == 1:
            return Poisson().loglike_obs(y, mu, weights, scale)
        if p == 2:
            return Gamma().loglike_obs(y, mu, weights, scale)
        if p < 1 or p > 2:
            return np.full(y.shape, np.nan)
        phi = scale / np.broadcast_to(np.asarray(_w(weights), dtype=np.float64), y.shape)
        theta = mu ** (1 - p) / (1 - p)
        kappa = mu ** (2 - p) / (2 - p)
        alpha = (2 - p) / (1 - p)
        ll = (y * theta - kappa) / phi
        pos = y > 0
        if np.any(pos):
            yp, sp = y[pos], phi[pos]
            x = ((p - 1) * sp / yp) ** alpha / ((2 - p) * sp)
            ll[pos] += np.log(1 / yp) + special.log_wright_bessel(-alpha, 0, x)
        return ll

    def resid_anscombe(
        self, y: np.ndarray, mu: np.ndarray, weights: Any = None, scale: float = 1.0
    ) -> np.ndarray:
        p = self.var_power
        if p == 3:
            resid = np.log(y / mu) / np.sqrt(mu * scale)
        else:
            c = (3.0 - p) / 3.0
            resid = ((1.0 / c) * (y**c - mu**c) / mu ** (p / 6.0)) / scale**0.5
        return resid * np.sqrt(_w(weights))

    def _outside(self, y: np.ndarray) -> np.ndarray:
        if self.var_power == 0:
            return ~np.isfinite(y)
        if self.var_power > 2:
            return ~((y > 0) & np.isfinite(y))
        return ~((y >= 0) & np.isfinite(y))

    def params(self) -> dict[str, float]:
        return {"var_power": self.var_power}

    def __repr__(self) -> str:
        return f"Tweedie(link={self.link!r}, var_power={self.var_power!r})"


# Name -> class: the registry :func:`get_family` resolves.
FAMILIES: dict[str, type[Family]] = {
    "gaussian": Gaussian,
    "binomial": Binomial,
    "poisson": Poisson,
    "gamma": Gamma,
    "inverse_gaussian": InverseGaussian,
    "negative_binomial": NegativeBinomial,
    "tweedie": Tweedie,
}


def get_family(family: str | Family, link: str | Link | None = None, **params: float) -> Family:
    """Resolve a family (and link) given by names or objects.

    Parameters
    ----------
    family : str or Family
        ``"gaussian"``, ``"binomial"``, ``"poisson"``, ``"gamma"``,
        ``"inverse_gaussian"``, ``"negative_binomial"`` or ``"tweedie"``, or a
        :class:`Family` (returned as is when ``link`` is None), or a statsmodels
        family object such as ``sm.families.NegativeBinomial(alpha=0.5)`` (its link,
        ``alpha`` and ``var_power`` carried over), so code written for statsmodels
        runs unchanged.
    link : str or Link, optional
        ``"logit"``, ``"probit"``, ``"cloglog"``, ``"cauchy"``, ``"loglog"``,
        ``"logc"`` (the binomial's), ``"log"``, ``"identity"``, ``"inverse"``,
        ``"inverse_squared"``, ``"sqrt"`` or ``"power(p)"`` (``mu ** p``); the family's canonical
        (statsmodels default) link when omitted.
    **params
        ``alpha`` for the negative binomial (default 1.0), ``var_power`` for Tweedie
        (default 1.0).

    Returns
    -------
    Family
    """
    link_obj: Link | None
    if link is None or isinstance(link, Link):
        link_obj = link
    elif isinstance(link, str):
        link_obj = _link_by_name(link)
    elif _from_statsmodels_module(link):
        link_obj = _statsmodels_link(link)
    else:
        raise TypeError(f"link must be a name or a Link; got {link!r}")
    if _from_statsmodels_module(family):
        family = _statsmodels_family(family)
    if isinstance(family, Family):
        if params:
            raise ValueError(f"family parameters {sorted(params)} given with a Family object")
        if link_obj is None:
            return family
        return type(family)(link_obj, **family.params())  # type: ignore[call-arg]
    if not isinstance(family, str):
        raise TypeError(f"family must be a name or a Family; got {family!r}")
    key = family.lower().replace("-", "_").replace(" ", "_")
    # statsmodels' class names written as one word ("NegativeBinomial") name them too.
    key = {name.replace("_", ""): name for name in FAMILIES}.get(key, key)
    if key not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; valid families: {sorted(FAMILIES)}")
    cls = FAMILIES[key]
    allowed = {"negative_binomial": {"alpha"}, "tweedie": {"var_power"}}.get(key, set())
    unknown = set(params) - allowed
    if unknown:
        raise ValueError(
            f"unknown parameters {sorted(unknown)} for the {key} family"
            f"{'; it takes ' + str(sorted(allowed)) if allowed else ''}"
        )
    return cls(link_obj, **params)  # type: ignore[call-arg]


# statsmodels' class names -> shardfit's names (``statsmodels.genmod.families``).
_SM_FAMILIES = {
    "Gaussian": "gaussian",
    "Binomial": "binomial",
    "Poisson": "poisson",
    "Gamma": "gamma",
    "InverseGaussian": "inverse_gaussian",
    "NegativeBinomial": "negative_binomial",
    "Tweedie": "tweedie",
}
_SM_LINKS = {
    "Logit": "logit",
    "Probit": "probit",
    "Cauchy": "cauchy",
    "CLogLog": "cloglog",
    "LogLog": "loglog",
    "LogC": "logc",
    "Log": "log",
    "Identity": "identity",
    "InversePower": "inverse",
    "InverseSquared": "inverse_squared",
    "Sqrt": "sqrt",
}


def _link_by_name(name: str) -> Link:
    compact = name.lower().replace(" ", "")
    # Links with a parameter: "power(0.3)", "nbinom(0.5)" (the names results keep);
    # read before "-" becomes "_" ("power(-1)").
    for prefix, parametrized in (("power(", Power), ("nbinom(", NegativeBinomialLink)):
        if compact.startswith(prefix) and compact.endswith(")"):
            try:
                value = float(compact[len(prefix) : -1])
            except ValueError:
                break
            return parametrized(value)
    key = compact.replace("-", "_")
    if key not in LINKS:
        raise ValueError(
            f"unknown link {name!r}; valid links: {sorted(LINKS)}, 'power(p)' or 'nbinom(alpha)'"
        )
    return LINKS[key]()


def _from_statsmodels_module(value: Any) -> bool:
    return type(value).__module__.startswith("statsmodels.")


def _statsmodels_link(link: Any) -> Link:
    """The shardfit link of a statsmodels link object (its class or a base class)."""
    for cls in type(link).__mro__:
        if cls.__name__ in _SM_LINKS:
            return LINKS[_SM_LINKS[cls.__name__]]()
        if cls.__name__ == "Power":
            return Power(float(link.power))
        if cls.__name__ == "NegativeBinomial":  # statsmodels' links.NegativeBinomial
            return NegativeBinomialLink(float(link.alpha))
        if cls.__name__ == "CDFLink":  # a CDF other than the normal's or Cauchy's
            break
    raise ValueError(
        f"the statsmodels link {type(link).__name__} has no shardfit counterpart; "
        f"valid links: {sorted(LINKS)}, 'power(p)' or 'nbinom(alpha)'"
    )


def _statsmodels_family(family: Any) -> Family:
    """The shardfit family of a statsmodels family object, link and parameters kept."""
    names = [cls.__name__ for cls in type(family).__mro__]
    key = next((_SM_FAMILIES[n] for n in names if n in _SM_FAMILIES), None)
    if key is None:
        raise TypeError(
            f"the statsmodels family {type(family).__name__} has no shardfit counterpart; "
            f"valid families: {sorted(FAMILIES)}"
        )
    params: dict[str, float] = {}
    if key == "negative_binomial":
        params["alpha"] = float(family.alpha)
    if key == "tweedie":
        if getattr(family, "eql", False):
            raise ValueError(
                "statsmodels' Tweedie(eql=True) (extended quasi-likelihood) is not "
                "supported; pass eql=False, the default, for the exact likelihood"
            )
        params["var_power"] = float(family.var_power)
    return FAMILIES[key](_statsmodels_link(family.link), **params)  # type: ignore[call-arg]
