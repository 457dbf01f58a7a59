"""IRLS iterations after the first read nothing: the partition cache serves them
(issue 6). Reads are counted by a partition that logs them to a file."""

from __future__ import annotations

import pytest
from glm_cases import FORMULA, glm_frame
from glm_counting import logged_source, reads

import shardfit


def test_iterations_do_not_read_serial(tmp_path) -> None:
    log = tmp_path / "reads.log"
    source = logged_source(glm_frame("gamma", "log", seed=3), 3, log)
    result = shardfit.glm(FORMULA, source, family="gamma", link="log").fit(backend="serial")
    assert result.iterations >= 5
    passes = [name for name, _ in result.extra["passes"]]
    assert sum(name.startswith("glm-irls") for name in passes) == result.iterations + 1
    # The schema pass and the prepare pass read each partition; nothing else does.
    assert reads(log) == {p.key: 2 for p in source.partitions}


def test_iterations_do_not_read_processes(tmp_path) -> None:
    log = tmp_path / "reads.log"
    source = logged_source(glm_frame("poisson", seed=3), 4, log)
    result = shardfit.poisson(FORMULA, source).fit(backend="processes", workers=2)
    assert result.iterations >= 4
    # A worker that did not encode a partition in the prepare pass encodes it once on
    # its first miss: at most schema + one read per worker, never one per iteration.
    counts = reads(log)
    assert set(counts) == {p.key for p in source.partitions}
    assert all(2 <= n <= 3 for n in counts.values()), counts


def test_the_last_iteration_evaluates_the_fit_when_it_can() -> None:
    """A fixed-scale family with a nonrobust covariance needs no final pass: the IRLS
    pass expected to be the last evaluates the log-likelihood and null deviance on the
    block it holds. Its figures equal a fit that runs the final pass (HC0 needs it)."""
    import numpy as np

    frame = glm_frame("poisson", seed=5)
    folded = shardfit.poisson(FORMULA, frame).fit(backend="serial")
    robust = shardfit.poisson(FORMULA, frame).fit(backend="serial", cov_type="HC0")
    names = [name for name, _ in folded.extra["passes"]]
    assert "glm-final" not in names
    assert "glm-final" in [name for name, _ in robust.extra["passes"]]
    assert sum(name.startswith("glm-irls") for name in names) == folded.iterations + 1
    for attribute in ("llf", "deviance", "null_deviance", "aic", "pearson_chi2"):
        np.testing.assert_allclose(
            getattr(folded, attribute), getattr(robust, attribute), rtol=1e-13
        )
    np.testing.assert_array_equal(folded.params, robust.params)
    # A free-scale family keeps the final pass (its log-likelihood needs the scale).
    gamma = shardfit.glm(FORMULA, glm_frame("gamma", "log", seed=5), family="gamma", link="log")
    assert "glm-final" in [name for name, _ in gamma.fit(backend="serial").extra["passes"]]


def test_the_prepare_pass_takes_the_first_step_when_the_start_allows() -> None:
    """A start that needs no mean of all the responses (the binomial's, or given
    start_params) lets the prepare pass take IRLS's first step: one pass fewer, the
    same estimates as statsmodels, including a partition whose rows are all dropped."""
    import numpy as np
    import statsmodels.api as sm
    from glm_cases import sm_fit
    from statsmodels.genmod.generalized_linear_model import GLM as SmGLM

    from shardfit.data.memory import from_pandas

    frame = glm_frame("binomial", seed=7, rows=2000)
    frame.loc[1000:1499, "x1"] = np.nan  # the third of four partitions: all dropped
    complete = frame.dropna().reset_index(drop=True)
    reference = sm_fit(complete, "binomial", weights=True, offset=True)
    model = shardfit.logit(FORMULA, from_pandas(frame, 4), weights="w", offset="off")
    result = model.fit(backend="serial")
    names = [name for name, _ in result.extra["passes"]]
    assert sum(name.startswith("glm-irls") for name in names) == result.iterations
    assert result.iterations == reference.fit_history["iteration"]
    assert result.rows_dropped == {"missing": 500}
    for attribute in ("params", "bse"):
        np.testing.assert_allclose(
            getattr(result, attribute).loc[reference.params.index],
            getattr(reference, attribute),
            rtol=1e-10,
        )
    np.testing.assert_allclose(result.deviance, reference.deviance, rtol=1e-12)
    assert result.deviance_history[1] == pytest.approx(reference.fit_history["deviance"][1])

    # method="qr" takes every step by TSQR: the prepare pass does not take one.
    qr = shardfit.logit(FORMULA, from_pandas(frame, 4), weights="w", offset="off")
    qr_result = qr.fit(backend="serial", method="qr")
    qr_names = [name for name, _ in qr_result.extra["passes"]]
    assert sum(name.startswith("glm-irls") for name in qr_names) == qr_result.iterations + 1
    np.testing.assert_allclose(qr_result.params, result.params, rtol=1e-10)

    # A family whose start needs the mean takes it with given start_params.
    gamma = glm_frame("gamma", "log", seed=8)
    start = sm_fit(gamma, "gamma", "log").params * 0.8
    log_gamma = sm.families.Gamma(sm.families.links.Log())
    theirs = SmGLM.from_formula(FORMULA, gamma, family=log_gamma).fit(start_params=start.to_numpy())
    ours = shardfit.glm(FORMULA, from_pandas(gamma, 3), family="gamma", link="log").fit(
        backend="serial", start_params=start
    )
    gamma_names = [name for name, _ in ours.extra["passes"]]
    assert sum(name.startswith("glm-irls") for name in gamma_names) == ours.iterations
    np.testing.assert_allclose(ours.params.loc[theirs.params.index], theirs.params, rtol=1e-10)
    np.testing.assert_allclose(ours.scale, theirs.scale, rtol=1e-10)
