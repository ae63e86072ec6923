"""The estimators as a scikit-learn user meets them: accuracy beside scikit-learn's own MLP on
real data sets at defaults, Pipelines and cross_val_score, pandas column names, pickling across
processes, partial_fit and warm_start, the fitted attributes, and errors of the right type."""

import pickle
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from sklearn import datasets
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import cross_val_score
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import wgpu_mlp
from wgpu_mlp import MLPClassifier, MLPRegressor


@pytest.mark.parametrize("name", ["iris", "wine", "breast_cancer"])
def test_accuracy_at_defaults_matches_scikit_learn(name):
    # Same pipeline, same folds, defaults on both sides: the mean 5-fold accuracy within 1.5
    # points (one iris test row is 0.67 of a point; the initialisations differ in their draws).
    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    ours = cross_val_score(make_pipeline(StandardScaler(), MLPClassifier(random_state=0)), X, y, cv=5)
    theirs = cross_val_score(make_pipeline(StandardScaler(), SkMLPClassifier(random_state=0)), X, y, cv=5)
    assert ours.mean() >= theirs.mean() - 0.015, (ours.mean(), theirs.mean())


def test_predict_is_the_forward_pass_of_coefs_and_intercepts():
    # coefs_ (n_in, n_out) and intercepts_ as scikit-learn lays them out: a numpy forward pass
    # in float64 gives predict_proba to float32 rounding (1e-5 absolute on probabilities).
    X, y = datasets.load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    clf = MLPClassifier(hidden_layer_sizes=(16, 8), activation="tanh", max_iter=30, random_state=1).fit(X, y)
    assert [w.shape for w in clf.coefs_] == [(13, 16), (16, 8), (8, 3)]
    a = X
    for i, (w, b) in enumerate(zip(clf.coefs_, clf.intercepts_)):
        a = a @ w.astype(np.float64) + b
        if i < len(clf.coefs_) - 1:
            a = np.tanh(a)
    p = np.exp(a - a.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(clf.predict_proba(X), p, atol=1e-5)
    assert clf.n_layers_ == 4 and clf.n_outputs_ == 3 and clf.n_iter_ == len(clf.loss_curve_)


def test_pandas_feature_names_and_string_classes():
    import pandas as pd  # the package's [test] extra

    X, y = datasets.load_iris(return_X_y=True, as_frame=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = MLPClassifier(max_iter=50, random_state=0).fit(X, names)
    assert list(clf.feature_names_in_) == list(X.columns)
    assert set(clf.predict(X)) <= set(names) and list(clf.classes_) == sorted(set(names))
    with pytest.warns(UserWarning, match="feature names"):
        clf.predict(X.to_numpy())
    assert isinstance(pd.DataFrame, type)


def test_pickle_moves_a_fitted_model_to_another_process(tmp_path):
    X, y = datasets.load_digits(return_X_y=True)
    clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=20, random_state=0).fit(X / 16, y)
    path = tmp_path / "clf.pkl"
    path.write_bytes(pickle.dumps(clf))
    np.save(tmp_path / "x.npy", X[:50] / 16)
    script = (
        "import pickle, sys, numpy as np; "
        f"clf = pickle.loads(open({str(path)!r}, 'rb').read()); "
        f"np.save({str(tmp_path / 'p.npy')!r}, clf.predict_proba(np.load({str(tmp_path / 'x.npy')!r})))"
    )
    subprocess.run([sys.executable, "-c", script], check=True)
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), clf.predict_proba(X[:50] / 16))
    # the pickle holds the model file's bytes, not device handles: the weights come back whole
    again = pickle.loads(pickle.dumps(clf))
    for a, b in zip(again.coefs_ + again.intercepts_, clf.coefs_ + clf.intercepts_):
        np.testing.assert_array_equal(a, b)


def test_partial_fit_trains_one_epoch_per_call_and_keeps_classes():
    X, y = datasets.load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    clf = MLPClassifier(random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X, y)
    for _ in range(3):
        clf.partial_fit(X, y, classes=[0, 1, 2])
    assert clf.n_iter_ == 3 and len(clf.loss_curve_) == 3
    assert clf.loss_curve_[2] < clf.loss_curve_[0]
    with pytest.raises(ValueError, match="X has 3 features"):
        clf.partial_fit(X[:, :3], y)


def test_warm_start_continues_from_the_fitted_weights():
    X, y = datasets.load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    clf = MLPClassifier(max_iter=5, warm_start=True, random_state=0, n_iter_no_change=100).fit(X, y)
    first = clf.loss_curve_[-1]
    clf.fit(X, y)
    assert clf.n_iter_ == 10 and clf.loss_curve_[-1] < first


def test_early_stopping_keeps_validation_scores():
    X, y = datasets.load_digits(return_X_y=True)
    clf = MLPClassifier(early_stopping=True, n_iter_no_change=3, max_iter=200, random_state=0).fit(X / 16, y)
    assert len(clf.validation_scores_) == clf.n_iter_ < 200
    assert clf.best_validation_score_ == max(clf.validation_scores_) and clf.best_loss_ is None


def test_regressor_fits_one_and_several_targets():
    X, y = datasets.make_regression(n_samples=300, n_features=5, n_targets=2, noise=1.0, random_state=0)
    X, y = StandardScaler().fit_transform(X), StandardScaler().fit_transform(y)
    reg = MLPRegressor(max_iter=300, random_state=0).fit(X, y)
    assert reg.predict(X).shape == (300, 2) and reg.score(X, y) > 0.9
    reg1 = MLPRegressor(max_iter=300, random_state=0).fit(X, y[:, 0])
    assert reg1.predict(X).shape == (300,) and reg1.score(X, y[:, 0]) > 0.9


def test_errors_are_python_exceptions_of_the_right_type():
    X, y = datasets.load_iris(return_X_y=True)
    with pytest.raises(NotFittedError):
        MLPClassifier().predict(X)
    with pytest.raises(ValueError, match="NaN"):
        MLPClassifier().fit(np.where(X > 7, np.nan, X), y)
    with pytest.raises(ValueError, match="solver"):
        MLPClassifier(solver="lbfgs").fit(X, y)
    with pytest.raises(ValueError, match="at least 2 classes"):
        MLPClassifier().fit(X, np.zeros(len(y)))
    # a Rust refusal arrives as ValueError with the Rust message
    with pytest.raises(ValueError, match="validation_fraction"):
        wgpu_mlp._core.fit(X.astype(np.float32), {"validation_fraction": 2.0}, y_codes=y.astype(np.int64), n_classes=3)
    # a diverging run: the library's TrainingError (a RuntimeError), never a panic
    with pytest.raises(wgpu_mlp.TrainingError):
        MLPRegressor(solver="sgd", learning_rate_init=1e6, max_iter=50, random_state=0).fit(X, y * 1e6)


def test_the_gil_is_released_while_the_gpu_trains():
    X, y = datasets.load_digits(return_X_y=True)
    ticks = []
    done = threading.Event()

    def count():
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.005)

    thread = threading.Thread(target=count)
    thread.start()
    start = time.perf_counter()
    MLPClassifier(hidden_layer_sizes=(64,), max_iter=15, random_state=0, n_iter_no_change=100).fit(X / 16, y)
    took = time.perf_counter() - start
    done.set()
    thread.join()
    during = [t for t in ticks if start < t < start + took]
    # with the GIL held for the whole fit the thread could not tick at all
    assert len(during) >= 0.2 * took / 0.005, (len(during), took)


def test_probabilities_sum_to_one_in_float64_and_sklearn_attributes():
    import warnings as w

    from sklearn.metrics import log_loss

    X, y = datasets.load_iris(return_X_y=True)
    clf = MLPClassifier(max_iter=20, random_state=0).fit(X, y)
    p = clf.predict_proba(X)
    with w.catch_warnings():
        w.simplefilter("error")  # scikit-learn warns when rows do not sum to one
        log_loss(y, p)
    assert clf.loss_ == clf.loss_curve_[-1] and clf.out_activation_ == "softmax"


def test_bad_parameters_are_value_errors_and_sparse_input_is_taken():
    import scipy.sparse

    X, y = datasets.load_iris(return_X_y=True)
    for bad in [dict(momentum=None), dict(beta_1="x"), dict(hidden_layer_sizes=None), dict(hidden_layer_sizes=5.0),
                dict(activation=["relu"]), dict(validation_fraction=0.0, early_stopping=True)]:
        with pytest.raises(ValueError):
            MLPClassifier(**bad).fit(X, y)
    MLPClassifier(validation_fraction=0.0, max_iter=2).fit(X, y)  # unused without early stopping
    dense = MLPClassifier(max_iter=5, random_state=0).fit(X, y)
    sparse = MLPClassifier(max_iter=5, random_state=0).fit(scipy.sparse.csr_matrix(X), y)
    np.testing.assert_array_equal(dense.predict_proba(X), sparse.predict_proba(scipy.sparse.csr_matrix(X)))
