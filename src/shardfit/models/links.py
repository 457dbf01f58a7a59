"""Link functions of generalized linear models, with statsmodels' numerics.

A link ``g`` maps the mean ``mu`` to the linear predictor ``eta = g(mu)``. Each class
reproduces ``statsmodels.genmod.families.links`` operation for operation, clipping
included, so that IRLS steps (and hence iteration counts) equal statsmodels'.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
from scipy import special

__all__ = [
    "LINKS",
    "CLogLog",
    "Cauchy",
    "Identity",
    "InversePower",
    "InverseSquared",
    "Link",
    "Log",
    "LogC",
    "LogLog",
    "Logit",
    "NegativeBinomialLink",
    "Power",
    "Probit",
    "Sqrt",
]

FLOAT_EPS = float(np.finfo(float).eps)


def _clip_unit(p: np.ndarray) -> np.ndarray:
    return np.clip(p, FLOAT_EPS, 1.0 - FLOAT_EPS)


def _clip_positive(x: np.ndarray) -> np.ndarray:
    return np.clip(x, FLOAT_EPS, np.inf)


class Link(ABC):
    """A link function ``eta = g(mu)``.

    Attributes
    ----------
    name : str
        The name :func:`shardfit.models.families.get_family` knows it by.
    """

    name: str = ""

    @abstractmethod
    def __call__(self, mu: np.ndarray) -> np.ndarray:
        """The linear predictor ``g(mu)``."""

    @abstractmethod
    def inverse(self, eta: np.ndarray) -> np.ndarray:
        """The mean ``g^{-1}(eta)``."""

    @abstractmethod
    def deriv(self, mu: np.ndarray) -> np.ndarray:
        """``d eta / d mu = g'(mu)``."""

    @abstractmethod
    def deriv2(self, mu: np.ndarray) -> np.ndarray:
        """``g''(mu)`` (the observed information of non-canonical links needs it)."""

    def inverse_deriv(self, eta: np.ndarray) -> np.ndarray:
        """``d mu / d eta = 1 / g'(g^{-1}(eta))``."""
        return 1.0 / self.deriv(self.inverse(eta))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(vars(self).items()))))


class Logit(Link):
    """``log(mu / (1 - mu))``, the canonical link of the binomial."""

    name = "logit"

    def __call__(self, mu: np.ndarray) -> np.ndarray:
        p = _clip_unit(mu)
        return np.log(p / (1.0 - p))

    def inverse(self, eta: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):  # exp(-eta) = inf gives the exact limit 0
            return 1.0 / (1.0 + np.exp(-np.asarray(eta)))

    def deriv(self, mu: np.ndarray) -> np.ndarray:
        p = _clip_unit(mu)
        return 1.0 / (p * (1 - p))

    def deriv2(self, mu: np.ndarray) -> np.ndarray:
        v = mu * (1 - mu)
        return (2 * mu - 1) / v**2

    def inverse_deriv(self, eta: np.ndarray) -> np.ndarray:
        # exp(-|eta|) form: no inf/inf for large |eta|.
        t = np.exp(-np.abs(np.asarray(eta, dtype=np.float64)))
        return t / (1 + t) ** 2


def _normal_pdf(x: np.ndarray) -> np.ndarray:
    # scipy.stats.norm.pdf's own formula; scipy.stats itself costs every process that
    # imports it ~40 MB, and the links run in every worker.
    return np.exp(-(np.asarray(x) ** 2) / 2.0) / _SQRT_2PI


_SQRT_2PI = float(np.sqrt(2 * np.pi))


class Probit(Link):
    """``Phi^{-1}(mu)``, the standard normal quantile (``scipy.special``'s ``ndtri``
    and ``ndtr``, what ``scipy.stats.norm`` evaluates)."""

    name = "probit"

    def __call__(self, mu: np.ndarray) -> np.ndarray:
        return special.ndtri(_clip_unit(mu))

    def inverse(self, eta: np.ndarray) -> np.ndarray:
        return special.ndtr(eta)

    def deriv(self, mu: np.ndarray) -> np.ndarray:
        return 1.0 / _normal_pdf(special.ndtri(_clip_unit(mu)))

    def deriv2(self, mu: np.ndarray) -> np.ndarray:
        eta = special.ndtri(_clip_unit(mu))
        return eta / _normal_pdf(eta) ** 2

    def inverse_deriv(self, eta: np.ndarray) -> np.ndarray:
        return _normal_pdf(eta)


class CLogLog(Link):
    """``log(-log(1 - mu))``, the complementary log-log link."""

    name = "cloglog"

    def __call__(self, mu: np.ndarray) -> np.ndarray:
        return np.log(-np.log(1 - _clip_unit(mu)))

    def inverse(self, eta: np.ndarray) -> np.ndarray:
        # exp(eta) = inf (a separated row's eta grows without bound) gives the exact
        # limit 1: no overflow warning before shardfit's own separation message.
        with np.errstate(over="ignore"):
            return 1 - np.exp(-np.exp(eta))

    def deriv(self, mu: np.ndarray) -> np.ndarray:
        p = _clip_unit(mu)
        return 1.0 / ((p - 1) * (np.log(1 - p)))

    def deriv2(self, mu: np.ndarray) -> np.ndarray:
        p = _clip_unit(mu)
        fl = np.log(1 - p)
        return -1 / ((1 - p) ** 2 * fl) * (1 + 1 / fl)

    def inverse_deriv(self, eta: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):  # exp(eta) = inf gives the exact limit 0
            return np.exp(eta - np.exp(eta))


class Cauchy(Link):
    """``tan(pi (mu - 1/2))``, the standard Cauchy quantile (statsmodels' ``Cauchy``,
    with ``scipy.stats.cauchy``'s formulas): heavier tails than the probit."""

    name = "cauchy"

    def __call__(self, mu: np.ndarray) -> np.ndarray:
        return np.tan(np.pi * (_clip_unit(mu) - 0.5))

    def inverse(self, eta: np.ndarray) -> np.ndarray:
        return np.arctan2(1.0, -np.asarray(eta, dtype=np.float64)) / np.pi

    def deriv(self, mu: np.ndarray) -> np.ndarray:
        # 1 / pdf(ppf(mu)), the pdf being 1 / (pi (1 + x**2)).
        x = self(mu)
        return 1.0 / (1.0 / np.pi / (1.0 + x * x))

    def deriv2(self, mu: np.ndarray) -> np.ndarray:
        a = np.pi * (_clip_unit(mu) - 0.5)
        return 2 * np.pi**2 * np.sin(a) / np.cos(a) ** 3

    def inverse_deriv(self, eta: np.ndarray) -> np.ndarray:
        x = np.asarray(eta, dtype=np.float64)
        with np.errstate(over="ignore"):
            return 1.0 / np.pi / (1.0 + x * x)


class LogLog(Link):
    """``-log(-log(mu))``, the log-log link (the complementary log-log of ``1 - mu``)."""

    name = "loglog"

    def __call__(self, mu: np.ndarray) -> np.ndarray:
        return -np.log(-np.log(_clip_unit(mu)))

    def inverse(self, eta: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):  # exp(-eta) = inf gives the exact limit 0
            return np.exp(-np.exp(-np.asarray(eta, dtype=np.float64)))

    def deriv(self, mu: np.ndarray) -> np.ndarray:
        p = _clip_unit(mu)
        return -1.0 / (p * np.log(p))

    def deriv2(self, mu: np.ndarray) -> np.ndarray:
        p = _clip_unit(mu)
        return (1 + np.log(p)) / (p * np.log(p)) ** 2

    def inverse_deriv(self, eta: np.ndarray) -> np.ndarray:
        z = np.asarray(eta, dtype=np.float64)
        with np.errstate(over="ignore"):  # exp(-z) = inf gives the exact limit 0
            return np.exp(-np.exp(-z) - z)


class LogC(Link):
    """``log(1 - mu)``, the log-complement link."""

    name = "logc"

    def __call__(self, mu: np.ndarray) -> np.ndarray:
        return np.log(1 - _clip_unit(mu))

    def inverse(self, eta: np.ndarray) -> np.ndarray:
        return 1 - np.exp(eta)

    def deriv(self, mu: np.ndarray) -> np.ndarray:
        return -1.0 / (1.0 - _clip_unit(mu))

    def deriv2(self, mu: np.ndarray) -> np.ndarray:
        return -1 * np.power(-1.0 / (1.0 - _clip_unit(mu)), 2)

    def inverse_deriv(self, eta: np.ndarray) -> np.ndarray:
        return -np.exp(eta)


class Log(Link):
    """``log(mu)``, the canonical link of the Poisson."""

    name = "log"

    def __call__(self, mu: np.ndarray) -> np.ndarray:
        return np.log(_clip_positive(mu))

    def inverse(self, eta: np.ndarray) -> np.ndarray:
        return np.exp(eta)

    def deriv(self, mu: np.ndarray) -> np.ndarray:
        return 1.0 / _clip_positive(mu)

    def deriv2(self, mu: np.ndarray) -> np.ndarray:
        return -1.0 / _clip_positive(mu) ** 2

    def inverse_deriv(self, eta: np.ndarray) -> np.ndarray:
        return np.exp(eta)


class Power(Link):
    """``mu ** power``; identity, inverse, inverse-squared and sqrt are special cases."""

    name = "power"

    def __init__(self, power: float = 1.0) -> None:
        self.power = float(power)
        if type(self) is Power:
            # A name that says the power, so results (which keep the link by name)
            # rebuild this link: "power(0.3)" resolves in ``get_family``.
            self.name = f"power({self.power!r})"

    def __call__(self, mu: np.ndarray) -> np.ndarray:
        return mu if self.power == 1 else np.power(mu, self.power)

    def inverse(self, eta: np.ndarray) -> np.ndarray:
        return eta if self.power == 1 else np.power(eta, 1.0 / self.power)

    def deriv(self, mu: np.ndarray) -> np.ndarray:
        if self.power == 1:
            return np.ones_like(mu, dtype=np.float64)
        return self.power * np.power(mu, self.power - 1)

    def deriv2(self, mu: np.ndarray) -> np.ndarray:
        if self.power == 1:
            return np.zeros_like(mu, dtype=np.float64)
        return self.power * (self.power - 1) * np.power(mu, self.power - 2)

    def inverse_deriv(self, eta: np.ndarray) -> np.ndarray:
        if self.power == 1:
            return np.ones_like(eta, dtype=np.float64)
        return np.power(eta, (1 - self.power) / self.power) / self.power

    def __repr__(self) -> str:
        if type(self) is Power:
            return f"Power(power={self.power!r})"
        return f"{type(self).__name__}()"


class Identity(Power):
    """``mu``."""

    name = "identity"

    def __init__(self) -> None:
        super().__init__(1.0)


class InversePower(Power):
    """``1 / mu``, the canonical link of the Gamma."""

    name = "inverse"

    def __init__(self) -> None:
        super().__init__(-1.0)


class InverseSquared(Power):
    """``1 / mu**2``, the canonical link of the inverse Gaussian."""

    name = "inverse_squared"

    def __init__(self) -> None:
        super().__init__(-2.0)


class Sqrt(Power):
    """``sqrt(mu)``."""

    name = "sqrt"

    def __init__(self) -> None:
        super().__init__(0.5)


class NegativeBinomialLink(Link):
    """``log(mu / (mu + 1 / alpha))``, the canonical link of the negative binomial at a
    fixed ``alpha`` (statsmodels' ``links.NegativeBinomial``); ``eta < 0`` for every
    ``mu > 0``."""

    name = "nbinom"

    def __init__(self, alpha: float = 1.0) -> None:
        if not (np.isfinite(alpha) and alpha > 0):
            raise ValueError(
                f"The 'alpha' parameter of the nbinom link must be a float in (0, inf). "
                f"Got {alpha!r} instead."
            )
        self.alpha = float(alpha)
        # A name that says alpha, so results (which keep the link by name) rebuild it.
        self.name = f"nbinom({self.alpha!r})"

    def __call__(self, mu: np.ndarray) -> np.ndarray:
        # log(p / (p + 1/alpha)) = -log1p(1 / (alpha p)): no cancellation for large p.
        return -np.log1p(1.0 / (self.alpha * _clip_positive(mu)))

    def inverse(self, eta: np.ndarray) -> np.ndarray:
        # -1 / (alpha (1 - exp(-eta))), with expm1 for eta near 0.
        return 1.0 / (self.alpha * np.expm1(-np.asarray(eta, dtype=np.float64)))

    def deriv(self, mu: np.ndarray) -> np.ndarray:
        return 1.0 / (mu + self.alpha * mu**2)

    def deriv2(self, mu: np.ndarray) -> np.ndarray:
        return -(1 + 2 * self.alpha * mu) / (mu + self.alpha * mu**2) ** 2

    def inverse_deriv(self, eta: np.ndarray) -> np.ndarray:
        t = np.exp(eta)
        return t / (self.alpha * (1 - t) ** 2)

    def __repr__(self) -> str:
        return f"NegativeBinomialLink(alpha={self.alpha!r})"


# Name -> class; the resolver in ``families`` validates a link against a family.
LINKS: dict[str, type[Link]] = {
    "logit": Logit,
    "probit": Probit,
    "cloglog": CLogLog,
    "cauchy": Cauchy,
    "loglog": LogLog,
    "logc": LogC,
    "log": Log,
    "identity": Identity,
    "inverse": InversePower,
    "inverse_power": InversePower,
    "inverse_squared": InverseSquared,
    "sqrt": Sqrt,
    "nbinom": NegativeBinomialLink,
}
