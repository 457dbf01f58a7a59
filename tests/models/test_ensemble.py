"""Stacked ensembles against scikit-learn: one layer equals StackingClassifier /
StackingRegressor (same splitter, final estimator, stack method); two layers equal
the same stack built by hand with cross_val_predict."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import StackingClassifier, StackingRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

import shardfit
from shardfit.errors import PartitionTaskError
from shardfit.models.ensemble import StackingEnsembleClassifier, StackingEnsembleRegressor

SEED = 20261123


@pytest.fixture(scope="module")
def multiclass() -> tuple[np.ndarray, np.ndarray]:
    X, y = make_classification(
        n_samples=240, n_features=6, n_informative=4, n_classes=3, random_state=SEED % 1000
    )
    labels = np.array(["cat", "dog", "eel"])[y]  # string labels, encoded as sklearn does
    return X, labels


@pytest.fixture(scope="module")
def regression() -> tuple[np.ndarray, np.ndarray]:
    X, y = make_regression(n_samples=200, n_features=5, noise=5.0, random_state=SEED % 1000)
    return X, y


def classifiers() -> list[tuple[str, object]]:
    return [
        ("lr", LogisticRegression(max_iter=1000)),
        ("tree", DecisionTreeClassifier(max_depth=4, random_state=0)),
        ("knn", KNeighborsClassifier(n_neighbors=7)),
    ]


def regressors() -> list[tuple[str, object]]:
    return [
        ("ridge", Ridge(alpha=2.0)),
        ("tree", DecisionTreeRegressor(max_depth=4, random_state=0)),
        ("knn", KNeighborsRegressor(n_neighbors=5)),
    ]


@pytest.mark.parametrize("stack_method", ["auto", "predict_proba", "predict"])
@pytest.mark.parametrize("passthrough", [False, True])
def test_one_layer_classifier_equals_sklearn(multiclass, stack_method, passthrough) -> None:
    X, y = multiclass
    cv = StratifiedKFold(4, shuffle=True, random_state=3)
    reference = StackingClassifier(
        classifiers(),
        final_estimator=LogisticRegression(max_iter=1000),
        cv=cv,
        stack_method=stack_method,
        passthrough=passthrough,
    ).fit(X, y)
    model = StackingEnsembleClassifier(
        classifiers(),
        final_estimator=LogisticRegression(max_iter=1000),
        cv=cv,
        stack_method=stack_method,
        passthrough=passthrough,
        backend="serial",
    ).fit(X, y)
    np.testing.assert_allclose(model.transform(X), reference.transform(X), rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        model.predict_proba(X), reference.predict_proba(X), rtol=0, atol=1e-12
    )
    np.testing.assert_array_equal(model.predict(X), reference.predict(X))
    np.testing.assert_array_equal(model.classes_, reference.classes_)
    assert model.score(X, y) == pytest.approx(reference.score(X, y), abs=0)


def test_binary_classifier_keeps_one_column_per_estimator() -> None:
    X, y = make_classification(n_samples=150, n_features=5, random_state=7)
    cv = KFold(5, shuffle=True, random_state=11)
    reference = StackingClassifier(classifiers(), cv=cv).fit(X, y)
    model = StackingEnsembleClassifier(classifiers(), cv=cv, backend="serial").fit(X, y)
    assert model.transform(X).shape == (150, 3)
    np.testing.assert_allclose(model.transform(X), reference.transform(X), rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        model.predict_proba(X), reference.predict_proba(X), rtol=0, atol=1e-12
    )


@pytest.mark.parametrize("passthrough", [False, True])
def test_one_layer_regressor_equals_sklearn(regression, passthrough) -> None:
    X, y = regression
    cv = KFold(5, shuffle=True, random_state=5)
    reference = StackingRegressor(
        regressors(), final_estimator=Ridge(alpha=0.5), cv=cv, passthrough=passthrough
    ).fit(X, y)
    model = StackingEnsembleRegressor(
        regressors(),
        final_estimator=Ridge(alpha=0.5),
        cv=cv,
        passthrough=passthrough,
        backend="serial",
    ).fit(X, y)
    np.testing.assert_allclose(model.predict(X), reference.predict(X), rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(model.transform(X), reference.transform(X), rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(
        model.final_estimator_.coef_, reference.final_estimator_.coef_, rtol=1e-12, atol=1e-12
    )


def test_default_final_estimators_and_int_cv_equal_sklearn(regression, multiclass) -> None:
    X, y = regression
    reference = StackingRegressor(regressors(), cv=3).fit(X, y)
    model = StackingEnsembleRegressor(regressors(), cv=3, backend="serial").fit(X, y)
    np.testing.assert_allclose(model.predict(X), reference.predict(X), rtol=1e-12, atol=1e-9)
    Xc, yc = multiclass
    reference_c = StackingClassifier(classifiers(), cv=3).fit(Xc, yc)
    model_c = StackingEnsembleClassifier(classifiers(), cv=3, backend="serial").fit(Xc, yc)
    np.testing.assert_allclose(
        model_c.predict_proba(Xc), reference_c.predict_proba(Xc), rtol=0, atol=1e-12
    )


def _by_hand_two_layers(X, y, first, second, final, cv, method):
    """The two-layer stack from cross_val_predict and full refits (the reference)."""

    def layer(features, estimators):
        oof = [cross_val_predict(est, features, y, cv=cv, method=method) for _, est in estimators]
        fitted = [est.fit(features, y) for _, est in estimators]
        return np.column_stack(oof), fitted

    features1, fitted1 = layer(X, first)
    features2, fitted2 = layer(features1, second)
    final.fit(features2, y)

    def predict(Xnew):
        h1 = np.column_stack([getattr(est, method)(Xnew) for est in fitted1])
        h2 = np.column_stack([getattr(est, method)(h1) for est in fitted2])
        return final.predict(h2)

    return features2, predict


def test_two_layer_regressor_equals_cross_val_predict_by_hand(regression) -> None:
    X, y = regression
    cv = KFold(4, shuffle=True, random_state=2)
    second = [
        ("ridge", Ridge(alpha=0.1)),
        ("tree", DecisionTreeRegressor(max_depth=3, random_state=1)),
    ]
    features, predict = _by_hand_two_layers(
        X, y, regressors(), second, Ridge(alpha=1.0), cv, "predict"
    )
    model = StackingEnsembleRegressor(
        [regressors(), second], final_estimator=Ridge(alpha=1.0), cv=cv, backend="serial"
    ).fit(X, y)
    assert list(model.layers_[1]) == ["ridge", "tree"]
    np.testing.assert_allclose(model.predict(X), predict(X), rtol=1e-12, atol=1e-9)
    Xnew = X[:17] * 1.5
    np.testing.assert_allclose(model.predict(Xnew), predict(Xnew), rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(
        model.final_estimator_.coef_,
        Ridge(alpha=1.0).fit(features, y).coef_,
        rtol=1e-12,
        atol=1e-12,
    )


def test_two_layers_beat_nothing_and_stay_close_to_one_layer(multiclass) -> None:
    # Not a reference check: a sanity bound that the second layer is wired to the first.
    X, y = multiclass
    cv = StratifiedKFold(4, shuffle=True, random_state=3)
    model = StackingEnsembleClassifier(
        [classifiers(), [("lr2", LogisticRegression(max_iter=1000))]], cv=cv, backend="serial"
    ).fit(X, y)
    assert model.transform(X).shape == (240, 3)  # lr2's three class probabilities
    assert model.score(X, y) > 0.8


def test_seeded_int_cv_is_reproducible_and_differs_from_unshuffled(regression) -> None:
    X, y = regression
    a = StackingEnsembleRegressor(regressors(), cv=4, random_state=9, backend="serial").fit(X, y)
    b = StackingEnsembleRegressor(regressors(), cv=4, random_state=9, backend="serial").fit(X, y)
    c = StackingEnsembleRegressor(regressors(), cv=4, backend="serial").fit(X, y)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    assert not np.array_equal(a.final_estimator_.coef_, c.final_estimator_.coef_)
    reference = StackingRegressor(regressors(), cv=KFold(4, shuffle=True, random_state=9))
    np.testing.assert_allclose(a.predict(X), reference.fit(X, y).predict(X), rtol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"cv": 1}, "'cv' parameter must be an int >= 2"),
        ({"cv": "five"}, "'cv' parameter must be an int >= 2 or a scikit-learn splitter"),
        ({"retries": -1}, "'retries' parameter must be an int >= 0"),
        ({"stack_method": "proba"}, "'stack_method' parameter must be one of"),
        ({"cv": KFold(3), "random_state": 0}, "'random_state' parameter applies to an int"),
    ],
)
def test_bad_parameters_are_named(multiclass, kwargs, match) -> None:
    X, y = multiclass
    with pytest.raises(ValueError, match=match):
        StackingEnsembleClassifier(classifiers(), backend="serial", **kwargs).fit(X, y)


def test_bad_layers_and_splitters_are_named(regression) -> None:
    X, y = regression
    with pytest.raises(ValueError, match="two estimators named 'a'"):
        StackingEnsembleRegressor([("a", Ridge()), ("a", Ridge())], backend="serial").fit(X, y)
    with pytest.raises(ValueError, match="non-empty list of layers"):
        StackingEnsembleRegressor([], backend="serial").fit(X, y)
    from sklearn.model_selection import ShuffleSplit

    with pytest.raises(ValueError, match="hold out every row exactly once"):
        StackingEnsembleRegressor(
            regressors(), cv=ShuffleSplit(3, random_state=0), backend="serial"
        ).fit(X, y)


def test_public_names() -> None:
    assert shardfit.StackingEnsembleClassifier is StackingEnsembleClassifier
    assert shardfit.StackingEnsembleRegressor is StackingEnsembleRegressor


def test_class_missing_from_a_training_fold_gets_zero_probability_as_sklearn() -> None:
    rng = np.random.default_rng(SEED)
    X = rng.normal(size=(90, 3))
    y = np.where(X[:, 0] > 0, "a", "b").astype(object)
    y[:4] = "rare"  # all in the first test fold of an unshuffled KFold
    X[:4] += 3.0
    cv = KFold(3)
    estimators = [("lr", LogisticRegression()), ("knn", KNeighborsClassifier(n_neighbors=3))]
    with pytest.warns(RuntimeWarning, match="Number of classes in training fold"):
        reference = StackingClassifier(estimators, cv=cv).fit(X, y)
    with pytest.warns(RuntimeWarning, match="fold 0 hold 2 of 3 classes"):
        model = StackingEnsembleClassifier(estimators, cv=cv, backend="serial").fit(X, y)
    np.testing.assert_allclose(model.transform(X), reference.transform(X), rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        model.predict_proba(X), reference.predict_proba(X), rtol=0, atol=1e-12
    )
    with (
        pytest.raises(PartitionTaskError, match=r"layer 0, estimator 'lr', fold 0.*2 of 3"),
        pytest.warns(RuntimeWarning),
    ):
        StackingEnsembleClassifier(
            estimators[:1], cv=cv, stack_method="decision_function", backend="serial"
        ).fit(X, y)


def test_bad_inputs_are_named_and_clone_keeps_parameters(regression) -> None:
    from sklearn.base import clone

    X, y = regression
    model = StackingEnsembleRegressor(regressors(), cv=3, passthrough=True, backend="serial")
    with pytest.raises(ValueError, match=r"non-empty 2-D array. Got shape \(200,\)"):
        model.fit(X[:, 0], y)
    with pytest.raises(ValueError, match="X has 200 rows but y has 199"):
        model.fit(X, y[:-1])
    copy = clone(model)
    assert copy.get_params()["cv"] == 3 and copy.get_params()["passthrough"] is True
    model.fit(X, y)
    with pytest.raises(ValueError, match="X has 4 features, but the ensemble was fitted with 5"):
        model.predict(X[:, :4])


def test_two_layer_classifier_equals_cross_val_predict_by_hand(multiclass) -> None:
    X, labels = multiclass
    classes, y = np.unique(labels, return_inverse=True)
    cv = StratifiedKFold(3, shuffle=True, random_state=6)
    second = [("lr2", LogisticRegression(C=0.5)), ("knn2", KNeighborsClassifier(n_neighbors=9))]
    h1 = np.hstack(
        [cross_val_predict(e, X, y, cv=cv, method="predict_proba") for _, e in classifiers()]
    )
    h2 = np.hstack([cross_val_predict(e, h1, y, cv=cv, method="predict_proba") for _, e in second])
    final = LogisticRegression().fit(h2, y)
    full1 = [e.fit(X, y) for _, e in classifiers()]
    full2 = [e.fit(h1, y) for _, e in second]
    Xnew = X[::7] + 0.25
    n1 = np.hstack([e.predict_proba(Xnew) for e in full1])
    expected = final.predict_proba(np.hstack([e.predict_proba(n1) for e in full2]))
    model = StackingEnsembleClassifier(
        [classifiers(), second], final_estimator=LogisticRegression(), cv=cv, backend="serial"
    ).fit(X, labels)
    np.testing.assert_allclose(model.predict_proba(Xnew), expected, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(model.predict(Xnew), classes[expected.argmax(axis=1)])


@pytest.mark.parametrize("backend", ["serial", "processes"])
def test_sample_weight_equals_sklearn(multiclass, backend, processes) -> None:
    X, y = multiclass
    w = np.random.default_rng(1).uniform(0.2, 3.0, size=len(y))
    cv = StratifiedKFold(4, shuffle=True, random_state=3)
    base = [
        ("lr", LogisticRegression(max_iter=1000)),
        ("tree", DecisionTreeClassifier(max_depth=4, random_state=0)),
    ]
    reference = StackingClassifier(base, final_estimator=LogisticRegression(), cv=cv)
    reference.fit(X, y, sample_weight=w)
    ours = StackingEnsembleClassifier(
        [base],
        final_estimator=LogisticRegression(),
        cv=cv,
        backend=processes if backend == "processes" else "serial",
    ).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(ours.predict_proba(X), reference.predict_proba(X), rtol=1e-12)
    unweighted = StackingClassifier(base, final_estimator=LogisticRegression(), cv=cv).fit(X, y)
    assert not np.allclose(unweighted.predict_proba(X), reference.predict_proba(X))
    knn = [("knn", KNeighborsClassifier())]
    with pytest.raises(TypeError, match=r"'knn' .* does not support sample weights"):
        StackingEnsembleClassifier([knn], backend="serial").fit(X, y, sample_weight=w)
