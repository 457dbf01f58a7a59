"""Families and links equal statsmodels' formula for formula (issue 6)."""

from __future__ import annotations

import numpy as np
import pytest
from glm_cases import sm_family

from shardfit.models.families import FAMILIES, ResponseError, get_family
from shardfit.models.links import LINKS

RTOL = 1e-13
# (family, link, params): every family with its canonical link, and the other links.
COMBINATIONS = [
    ("gaussian", None, {}),
    ("gaussian", "log", {}),
    ("gaussian", "inverse", {}),
    ("binomial", None, {}),
    ("binomial", "probit", {}),
    ("binomial", "cloglog", {}),
    ("binomial", "log", {}),
    ("poisson", None, {}),
    ("poisson", "identity", {}),
    ("poisson", "sqrt", {}),
    ("gamma", None, {}),
    ("gamma", "log", {}),
    ("gamma", "identity", {}),
    ("inverse_gaussian", None, {}),
    ("inverse_gaussian", "log", {}),
    ("negative_binomial", None, {"alpha": 0.7}),
    ("tweedie", None, {"var_power": 1.5}),
    ("tweedie", None, {"var_power": 1.0}),
    ("tweedie", None, {"var_power": 2.0}),
]


def _data(name: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mu = rng.uniform(0.05, 0.95, 60)
    if name == "binomial":
        y = (rng.uniform(size=60) < mu).astype(float)
    elif name in ("poisson", "negative_binomial"):
        y = rng.poisson(3 * mu).astype(float)
    elif name == "tweedie":
        y = rng.gamma(2.0, mu) * (rng.uniform(size=60) < 0.7)
    else:
        y = rng.gamma(2.0, mu)
    return y, mu, rng.uniform(0.5, 2.0, 60)


# Tweedie at var_power 1 and 2 with zero responses takes log(0) in both libraries.
@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize(("name", "link", "params"), COMBINATIONS)
def test_family_matches_statsmodels(name, link, params, rng) -> None:
    ours, theirs = get_family(name, link, **params), sm_family(name, link, **params)
    y, mu, w = _data(name, rng)
    pairs = {
        "deviance": (ours.deviance(y, mu, w), theirs.deviance(y, mu, var_weights=w)),
        "resid_dev": (ours.resid_dev(y, mu, w), theirs.resid_dev(y, mu, var_weights=w)),
        "loglike": (ours.loglike(y, mu, w, 1.3), theirs.loglike(y, mu, var_weights=w, scale=1.3)),
        "variance": (ours.variance(mu), theirs.variance(mu)),
        "variance_deriv": (ours.variance_deriv(mu), theirs.variance.deriv(mu)),
        "irls_weights": (ours.irls_weights(mu), theirs.weights(mu)),
        "starting_mu": (ours.starting_mu(y), theirs.starting_mu(y)),
        "link": (ours.link(mu), theirs.link(mu)),
        "deriv": (ours.link.deriv(mu), theirs.link.deriv(mu)),
        "deriv2": (ours.link.deriv2(mu), theirs.link.deriv2(mu)),
    }
    eta = theirs.link(mu)
    pairs["inverse"] = (ours.link.inverse(eta), theirs.link.inverse(eta))
    pairs["inverse_deriv"] = (ours.link.inverse_deriv(eta), theirs.link.inverse_deriv(eta))
    for what, (a, b) in pairs.items():
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=0, err_msg=what)
    assert ours.free_scale == (name not in ("binomial", "poisson", "negative_binomial"))


def test_default_links_are_statsmodels() -> None:
    for name in FAMILIES:
        params = {"alpha": 1.0} if name == "negative_binomial" else {}
        ours = get_family(name, **params)
        theirs = sm_family(name, **params)
        assert type(ours.link).__name__ == type(theirs.link).__name__, name


def test_resolver_errors_list_the_valid_names() -> None:
    with pytest.raises(ValueError, match=r"unknown family 'poison'; valid families: \["):
        get_family("poison")
    with pytest.raises(ValueError, match=r"'probit' link is not valid for the poisson family"):
        get_family("poisson", "probit")
    with pytest.raises(ValueError, match=r"unknown link 'logt'; valid links: \["):
        get_family("binomial", "logt")
    with pytest.raises(ValueError, match=r"unknown parameters \['alpha'\] for the poisson"):
        get_family("poisson", alpha=1.0)
    with pytest.raises(ValueError, match=r"'alpha' parameter of NegativeBinomial"):
        get_family("negative_binomial", alpha=-1.0)


def test_objects_and_names_agree() -> None:
    family = get_family("negative_binomial", alpha=0.5)
    assert get_family(family) is family
    relinked = get_family(family, "identity")
    assert relinked.alpha == 0.5 and relinked.link == LINKS["identity"]()
    assert get_family("Inverse-Gaussian") == get_family("inverse_gaussian", "inverse_squared")
    assert get_family("binomial", "probit") != get_family("binomial")


def test_check_response_names_row_and_value() -> None:
    with pytest.raises(ResponseError, match=r"binomial family \(0 <= y <= 1\) in p7, row 2: 1.5"):
        get_family("binomial").check_response(np.array([0.0, 1.0, 1.5, 2.0]), "p7")
    with pytest.raises(ResponseError, match=r"row 1: -1.0 \(1 such rows\)"):
        get_family("poisson").check_response(np.array([0.0, -1.0]))
    with pytest.raises(ResponseError, match=r"gamma family \(y > 0\), row 0: 0.0"):
        get_family("gamma").check_response(np.array([0.0]))
    get_family("tweedie", var_power=1.5).check_response(np.array([0.0, 2.0]))
