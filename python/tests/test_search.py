"""GridSearchCV and HalvingGridSearchCV: the stacked GPU search scores every candidate as
scikit-learn's GridSearchCV scores the same estimator fold by fold (same folds, same seeds),
with scikit-learn's cv_results_ keys, best_params_ and a refit best_estimator_."""

import numpy as np
import pytest
from sklearn import datasets
from sklearn.model_selection import GridSearchCV as SkGridSearchCV
from sklearn.model_selection import KFold

from wgpu_mlp import GridSearchCV, HalvingGridSearchCV, MLPClassifier, MLPRegressor


@pytest.fixture(scope="module")
def digits():
    X, y = datasets.load_digits(return_X_y=True)
    return X[:600] / 16, y[:600]


def test_stacked_search_scores_as_scikit_learn_fold_by_fold(digits):
    X, y = digits
    grid = {"learning_rate_init": [1e-3, 1e-2], "hidden_layer_sizes": [(16,), (32,)], "alpha": [1e-4, 1e-2]}
    est = MLPClassifier(max_iter=15, random_state=0)
    ours = GridSearchCV(est, grid, cv=3).fit(X, y)
    theirs = SkGridSearchCV(est, grid, cv=3).fit(X, y)
    assert ours.n_stacked_searches_ == 1  # 8 points x 3 folds: one stacked GPU job
    for k in range(3):
        # float32 scores from the GPU; a stacked model equals its lone twin to rounding
        np.testing.assert_allclose(
            ours.cv_results_[f"split{k}_test_score"], theirs.cv_results_[f"split{k}_test_score"], atol=2e-3
        )
    assert ours.best_params_ == theirs.best_params_
    assert list(ours.cv_results_["params"]) == list(theirs.cv_results_["params"])
    for key in theirs.cv_results_:
        if not key.startswith(("split", "mean_train", "std_train")):
            assert key in ours.cv_results_, key
    assert ours.best_estimator_.get_params() == est.set_params(**ours.best_params_).get_params()
    assert ours.score(X, y) == ours.best_estimator_.score(X, y)


def test_grids_that_are_not_one_product_still_search_every_candidate(digits):
    X, y = digits
    grid = [
        {"solver": ["sgd"], "momentum": [0.0, 0.9], "learning_rate_init": [0.05]},
        {"solver": ["adam"], "learning_rate_init": [1e-3, 1e-2], "batch_size": [32, 64]},
    ]
    search = GridSearchCV(MLPClassifier(max_iter=5, random_state=0), grid, cv=KFold(3)).fit(X, y)
    # sgd without momentum (plain SGD), sgd with, and adam per batch size: 4 stacked searches
    assert len(search.cv_results_["params"]) == 6 and search.n_stacked_searches_ == 4
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert sorted(search.cv_results_["rank_test_score"])[0] == 1


def test_regression_search_scores_r2():
    X, y = datasets.make_regression(n_samples=200, n_features=4, noise=5.0, random_state=0)
    y = (y - y.mean()) / y.std()
    search = GridSearchCV(MLPRegressor(max_iter=40, random_state=0), {"learning_rate_init": [1e-3, 1e-2]}, cv=3)
    search.fit(X, y)
    assert search.scorer_ == "r2" and search.best_score_ > 0.5


def test_halving_spends_epochs_on_the_best(digits):
    X, y = digits
    grid = {"learning_rate_init": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2]}
    search = HalvingGridSearchCV(MLPClassifier(max_iter=36, random_state=0), grid, factor=3, cv=3).fit(X, y)
    assert search.n_candidates_ == [6, 2] and search.n_resources_ == [12, 36]  # scikit-learn's schedule
    assert set(search.cv_results_["iter"]) == {0, 1}
    assert search.best_params_["max_iter"] == 36 and search.best_estimator_.n_iter_ <= 36


def test_what_the_gpu_search_cannot_do_is_refused_with_the_way_out(digits):
    X, y = digits
    with pytest.raises(ValueError, match="sklearn.model_selection.GridSearchCV"):
        GridSearchCV(MLPClassifier(), {"alpha": [1e-4]}, scoring=lambda e, X, y: 0.0).fit(X, y)
    with pytest.raises(TypeError, match="sklearn.model_selection.GridSearchCV"):
        GridSearchCV(SkGridSearchCV, {"alpha": [1e-4]}).fit(X, y)
    with pytest.raises(ValueError, match="resource"):
        HalvingGridSearchCV(MLPClassifier(), {"alpha": [1e-4]}, resource="n_samples").fit(X, y)


def test_a_dataframe_reaches_the_refit_estimator_with_its_column_names():
    X, y = datasets.load_iris(return_X_y=True, as_frame=True)
    search = GridSearchCV(MLPClassifier(max_iter=10, random_state=0), {"learning_rate_init": [1e-3, 1e-2]}, cv=3)
    search.fit(X, y)
    assert list(search.best_estimator_.feature_names_in_) == list(X.columns)
    assert search.n_features_in_ == 4 and list(search.classes_) == [0, 1, 2]


# --- defects found by review (session 7), each held here ------------------------------------

def _three_class(n=60, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 3)
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)
    return X, y


def test_error_score_raise_returns_results_when_nothing_failed():
    X, y = _three_class()
    est = MLPClassifier(hidden_layer_sizes=(5,), max_iter=10, random_state=0)
    search = GridSearchCV(est, {"learning_rate_init": [1e-3, 1e-2]}, cv=3, error_score="raise").fit(X, y)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


@pytest.mark.parametrize(
    "grid, cv",
    [
        ({"random_state": [0, 1, 2]}, 3),  # each candidate's own seed
        ({"learning_rate_init": [1e-3, 1e-2]}, KFold(7)),  # folds of 51 and 52 rows: batch 'auto' differs
        ({"n_iter_no_change": [2, 10], "early_stopping": [True]}, 3),  # scikit-learn's own hold-out split
    ],
)
def test_search_scores_equal_scikit_learns_fold_by_fold(grid, cv):
    X, y = _three_class()
    est = MLPClassifier(hidden_layer_sizes=(5,), max_iter=30, learning_rate_init=0.01, random_state=0)
    ours = GridSearchCV(est, grid, cv=cv).fit(X, y)
    theirs = SkGridSearchCV(est, grid, cv=cv).fit(X, y)
    np.testing.assert_allclose(ours.cv_results_["mean_test_score"], theirs.cv_results_["mean_test_score"], atol=1e-6)


def test_halving_schedules_rounds_as_scikit_learn():
    X, y = _three_class()
    est = MLPClassifier(hidden_layer_sizes=(5,), max_iter=16, random_state=0)
    grid = {"learning_rate_init": [1e-3, 3e-3, 1e-2, 3e-2]}
    search = HalvingGridSearchCV(est, grid, factor=2, cv=3).fit(X, y)
    assert search.n_candidates_ == [4, 2, 1] and search.n_resources_ == [4, 8, 16]
    assert search.cv_results_["params"][search.best_index_] == search.best_params_
    search = HalvingGridSearchCV(est, grid, factor=np.int64(2), min_resources=np.int64(2), cv=3).fit(X, y)
    assert search.n_resources_ == [2, 4, 8]
    with pytest.raises(ValueError, match="greater than max_resources"):
        HalvingGridSearchCV(est, grid, min_resources=20, cv=3).fit(X, y)
    with pytest.raises(ValueError, match="part of the searched parameters"):
        HalvingGridSearchCV(est, {"max_iter": [4, 8]}, cv=3).fit(X, y)
