"""GridSearchCV and HalvingGridSearchCV over this package's estimators: scikit-learn's
signature subset and results (``cv_results_``, ``best_params_``, ``best_estimator_``), with
every fold x grid point of a shape trained as ONE stacked GPU job by the Rust library.

The candidates are those of ``sklearn.model_selection.ParameterGrid`` and the folds those of
``check_cv`` (``StratifiedKFold(5)`` for a classifier by default), so scores line up with
scikit-learn's ``GridSearchCV`` run on the same estimator. Candidates that differ only in
``learning_rate_init``, ``hidden_layer_sizes``, ``max_iter``, ``activation``, ``alpha`` or (for
SGD) ``momentum`` share one stacked search; other differences run one search each.
"""

import time

import numpy as np
from scipy.stats import rankdata
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier
from sklearn.metrics import get_scorer
from sklearn.model_selection import ParameterGrid, check_cv
from sklearn.utils.validation import check_is_fitted

from . import _core
from ._core import TrainingError
from ._estimators import MLPClassifier, MLPRegressor

# scikit-learn parameter -> the Rust grid's axis (and the config key it replaces).
_AXES = {
    "learning_rate_init": "lr",
    "hidden_layer_sizes": "hidden",
    "max_iter": "epochs",
    "activation": "activation",
    "alpha": "weight_decay",
    "momentum": "momentum",
}
_SCORINGS = (
    "accuracy",
    "balanced_accuracy",
    "f1_macro",
    "neg_log_loss",
    "roc_auc",
    "r2",
    "neg_mean_squared_error",
    "neg_mean_absolute_error",
)


def _f32(value):
    return float(np.float32(value))


class _Group:
    """Candidates that one stacked Rust search trains: the same config but for the axes."""

    def __init__(self, config):
        self.config = config
        self.members = []  # (candidate index, {axis: value})

    def grid(self):
        axes = {}
        for _, values in self.members:
            for axis, value in values.items():
                axes.setdefault(axis, [])
                if value not in axes[axis]:
                    axes[axis].append(value)
        return axes

    def is_product(self):
        """Whether the members are exactly the product of their axes' values (else the Rust
        grid would train points nobody asked for)."""
        axes = self.grid()
        wanted = {tuple(values[a] for a in axes) for _, values in self.members}
        return len(wanted) == len(self.members) == int(np.prod([len(v) for v in axes.values()] or [1]))


def _check_estimator(estimator):
    if not isinstance(estimator, (MLPClassifier, MLPRegressor)):
        raise TypeError(
            f"wgpu_mlp's searches train wgpu_mlp.MLPClassifier or MLPRegressor, got {type(estimator).__name__}: "
            "use sklearn.model_selection.GridSearchCV for other estimators (or pipelines)."
        )


class _BaseSearch(MetaEstimatorMixin, BaseEstimator):
    """What both searches share: validation, folds, grouping into stacked runs, results."""

    def _scoring(self, estimator):
        if self.scoring is None:
            return "accuracy" if is_classifier(estimator) else "r2"
        if isinstance(self.scoring, str) and self.scoring in _SCORINGS:
            return self.scoring
        raise ValueError(
            f"scoring={self.scoring!r} is not computed on the GPU; use one of {list(_SCORINGS)}, or "
            "sklearn.model_selection.GridSearchCV with a wgpu_mlp estimator for any other scorer."
        )

    def _prepare(self, X, y):
        """Validated data, the folds, the scorer name and the encoded targets."""
        _check_estimator(self.estimator)
        probe = clone(self.estimator)
        X, y = probe._validate_xy(X, y, reset=True)
        if is_classifier(probe):
            probe._set_classes(np.unique(y))
        cv = check_cv(self.cv, y, classifier=is_classifier(probe))
        folds = [(list(map(int, tr)), list(map(int, te))) for tr, te in cv.split(X, y)]
        self.n_splits_ = len(folds)
        self.scorer_ = self._scoring(probe)
        return X, y, folds, probe._targets(y), probe

    def _groups(self, candidates, n_train):
        """The candidates grouped into stacked searches."""
        groups = {}
        seed = clone(self.estimator)._new_seed()  # one draw: every candidate starts alike
        for index, params in enumerate(candidates):
            est = clone(self.estimator).set_params(**params)
            config = est._config(n_train, seed, est.max_iter, "validation" if est.early_stopping else "training")
            axes = {}
            for name in params:
                axis = _AXES.get(name)
                # momentum is SGD's alone (Adam's beta_1 is its own); a zero momentum with
                # Nesterov is plain SGD, a different optimizer setting, so it is no axis value
                plain = est.nesterovs_momentum and est.momentum == 0
                if axis is None or (axis == "momentum" and (est.solver != "sgd" or plain)):
                    continue
                axes[axis] = config.pop(axis)
                if axis == "hidden":
                    axes[axis] = tuple(axes[axis])
            key = repr(sorted(config.items()))
            groups.setdefault(key, _Group(config)).members.append((index, axes))
        out = []
        for group in groups.values():
            if group.is_product():
                out.append(group)
            else:  # not a product of its axes: one search per candidate
                for member in group.members:
                    single = _Group(group.config)
                    single.members.append(member)
                    out.append(single)
        return out

    def _search(self, X, targets, group, folds, halving=None):
        """Runs one group's stacked search; per member: (fold scores, mean fit time) by round."""
        grid = {axis: [list(v) if axis == "hidden" else v for v in values] for axis, values in group.grid().items()}
        kwargs = dict(targets)
        if halving is not None:
            kwargs.update(halving_factor=halving[0], min_epochs=halving[1])
        # The base takes the first member's values where the grid sets them (the Rust search
        # refuses a base the grid would silently override).
        base = dict(group.config)
        base.update({axis: list(v) if axis == "hidden" else v for axis, v in group.members[0][1].items()})
        report = _core.grid_search(X, base, grid, folds, scoring=self.scorer_, **kwargs)
        rounds = []
        for round_ in report["rounds"]:
            found = {}
            for result in round_["results"]:
                point = result["params"]
                for index, values in group.members:
                    if all(self._same(axis, value, point) for axis, value in values.items()):
                        found[index] = (np.asarray(result["fold_scores"], dtype=np.float64), result["mean_fit_time"])
            rounds.append((round_["epochs"], found))
        return rounds

    @staticmethod
    def _same(axis, value, point):
        got = point[axis]
        if axis == "hidden":
            return tuple(got) == tuple(value)
        if axis in ("lr", "momentum", "weight_decay"):
            return _f32(got) == _f32(value)
        return got == value

    def _results(self, candidates, scores, fit_times, extra=None):
        """scikit-learn's cv_results_ for candidates with (n_candidates, n_splits) scores."""
        n = len(candidates)
        if isinstance(self.error_score, str) and self.error_score == "raise" and np.isnan(scores).any():
            raise TrainingError("a candidate's training failed (NaN scores) and error_score='raise'")
        scores = np.where(np.isnan(scores), self.error_score, scores)
        results = dict(extra or {})
        results["mean_fit_time"] = np.asarray(fit_times, dtype=np.float64)
        results["std_fit_time"] = np.zeros(n)
        results["mean_score_time"] = np.zeros(n)
        results["std_score_time"] = np.zeros(n)
        for name in sorted({k for c in candidates for k in c}):
            column = np.ma.MaskedArray(np.empty(n, dtype=object), mask=True)
            for i, c in enumerate(candidates):
                if name in c:
                    column[i] = c[name]
            results[f"param_{name}"] = column
        results["params"] = candidates
        for k in range(scores.shape[1]):
            results[f"split{k}_test_score"] = scores[:, k]
        means = scores.mean(axis=1)
        results["mean_test_score"] = means
        results["std_test_score"] = scores.std(axis=1)
        filled = np.where(np.isnan(means), np.nanmin(means) - 1 if np.isfinite(means).any() else 0, means)
        results["rank_test_score"] = rankdata(-filled, method="min").astype(np.int32)
        return results

    def _refit(self, X, y, params):
        """The best candidate fitted on all of (X, y) as the user gave them (a DataFrame's
        column names reach ``best_estimator_.feature_names_in_``)."""
        if not self.refit:
            return
        start = time.perf_counter()
        self.best_estimator_ = clone(self.estimator).set_params(**params).fit(X, y)
        self.refit_time_ = time.perf_counter() - start

    # --- the fitted search used as an estimator -------------------------------------------------

    def predict(self, X):
        """The best estimator's predictions (needs ``refit=True``)."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict(X)

    def predict_proba(self, X):
        """The best classifier's class probabilities (needs ``refit=True``)."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict_proba(X)

    def score(self, X, y):
        """The search's scorer applied to the best estimator on (X, y)."""
        check_is_fitted(self, "best_estimator_")
        return get_scorer(self.scorer_)(self.best_estimator_, X, y)

    @property
    def classes_(self):
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.classes_

    @property
    def n_features_in_(self):
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.n_features_in_


class GridSearchCV(_BaseSearch):
    """Exhaustive search over ``param_grid`` for a wgpu_mlp estimator, cross-validated, every
    fold x grid point of a shape trained as one stacked GPU job (scikit-learn's
    ``GridSearchCV``: same parameters subset, same ``cv_results_`` keys).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from wgpu_mlp import GridSearchCV, MLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> grid = {"learning_rate_init": [1e-3, 1e-2], "hidden_layer_sizes": [(16,), (64,)]}
    >>> search = GridSearchCV(MLPClassifier(max_iter=50, random_state=0), grid, cv=3).fit(X, y)
    >>> sorted(search.best_params_)
    ['hidden_layer_sizes', 'learning_rate_init']
    """

    def __init__(self, estimator, param_grid, *, scoring=None, n_jobs=None, refit=True, cv=None, verbose=0,
                 error_score=np.nan, return_train_score=False):
        self.estimator = estimator
        self.param_grid = param_grid
        self.scoring = scoring
        self.n_jobs = n_jobs
        self.refit = refit
        self.cv = cv
        self.verbose = verbose
        self.error_score = error_score
        self.return_train_score = return_train_score

    def fit(self, X, y):
        """Runs the search on (X, y) and refits the best candidate on all of it."""
        if self.return_train_score:
            raise ValueError("return_train_score=True is not available: the GPU scores the held-out folds only.")
        X_given, y_given = X, y
        X, y, folds, targets, probe = self._prepare(X, y)
        candidates = list(ParameterGrid(self.param_grid))
        n_train = min(len(tr) for tr, _ in folds)
        scores = np.full((len(candidates), len(folds)), np.nan)
        fit_times = np.zeros(len(candidates))
        self.n_stacked_searches_ = 0
        for group in self._groups(candidates, n_train):
            (_, found), = self._search(X, targets, group, folds)
            self.n_stacked_searches_ += 1
            for index, (fold_scores, fit_time) in found.items():
                scores[index], fit_times[index] = fold_scores, fit_time
        self.cv_results_ = self._results(candidates, scores, fit_times)
        self.best_index_ = int(np.argmin(self.cv_results_["rank_test_score"]))
        self.best_params_ = candidates[self.best_index_]
        self.best_score_ = float(self.cv_results_["mean_test_score"][self.best_index_])
        self.multimetric_ = False
        self._refit(X_given, y_given, self.best_params_)
        return self


class HalvingGridSearchCV(_BaseSearch):
    """Successive halving over ``param_grid`` with epochs (``max_iter``) as the resource:
    every candidate trains a few epochs on each fold, the best 1/factor go on with factor
    times the epochs, until one round is left (scikit-learn's ``HalvingGridSearchCV`` with
    ``resource='max_iter'``). Each round is one stacked GPU job.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from wgpu_mlp import HalvingGridSearchCV, MLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> grid = {"learning_rate_init": [1e-3, 3e-3, 1e-2, 3e-2]}
    >>> search = HalvingGridSearchCV(MLPClassifier(max_iter=90, random_state=0), grid, factor=3, cv=3).fit(X, y)
    >>> search.n_resources_[-1] <= 90
    True
    """

    def __init__(self, estimator, param_grid, *, factor=3, resource="max_iter", max_resources="auto",
                 min_resources="exhaust", aggressive_elimination=False, cv=5, scoring=None, refit=True,
                 error_score=np.nan, return_train_score=False, random_state=None, n_jobs=None, verbose=0):
        self.estimator = estimator
        self.param_grid = param_grid
        self.factor = factor
        self.resource = resource
        self.max_resources = max_resources
        self.min_resources = min_resources
        self.aggressive_elimination = aggressive_elimination
        self.cv = cv
        self.scoring = scoring
        self.refit = refit
        self.error_score = error_score
        self.return_train_score = return_train_score
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _check(self):
        if self.resource != "max_iter":
            raise ValueError(
                f"resource={self.resource!r}: the GPU halving spends epochs, use resource='max_iter' "
                "(or sklearn.model_selection.HalvingGridSearchCV for resource='n_samples')."
            )
        if self.max_resources != "auto":
            raise ValueError("max_resources must be 'auto' (the estimator's or the grid's max_iter).")
        if not (self.min_resources == "exhaust" or (isinstance(self.min_resources, int) and self.min_resources > 0)):
            raise ValueError(f"min_resources must be 'exhaust' or a positive int, got {self.min_resources!r}.")
        if self.aggressive_elimination:
            raise ValueError("aggressive_elimination=True is not available on the GPU halving.")
        if not (isinstance(self.factor, int) and self.factor >= 2):
            raise ValueError(f"factor must be an int >= 2, got {self.factor!r}.")
        if self.return_train_score:
            raise ValueError("return_train_score=True is not available: the GPU scores the held-out folds only.")

    def fit(self, X, y):
        """Runs the rounds on (X, y) and refits the last round's best on all of it."""
        self._check()
        X_given, y_given = X, y
        X, y, folds, targets, probe = self._prepare(X, y)
        candidates = list(ParameterGrid(self.param_grid))
        groups = self._groups(candidates, min(len(tr) for tr, _ in folds))
        if len(groups) != 1:
            raise ValueError(
                "HalvingGridSearchCV halves one stacked search: its grid may vary only "
                f"{sorted(_AXES)} (momentum with solver='sgd'), as a full product of values."
            )
        min_epochs = None if self.min_resources == "exhaust" else self.min_resources
        rounds = self._search(X, targets, groups[0], folds, halving=(self.factor, min_epochs))
        rows, scores, times, iters, resources = [], [], [], [], []
        for it, (epochs, found) in enumerate(rounds):
            for index, (fold_scores, fit_time) in sorted(found.items()):
                params = dict(candidates[index])
                rows.append(params)
                scores.append(fold_scores)
                times.append(fit_time)
                iters.append(it)
                resources.append(epochs)
        extra = {"iter": np.asarray(iters), "n_resources": np.asarray(resources)}
        self.cv_results_ = self._results(rows, np.asarray(scores), times, extra)
        self.n_iterations_ = len(rounds)
        self.n_candidates_ = [len(found) for _, found in rounds]
        self.n_resources_ = [epochs for epochs, _ in rounds]
        self.n_possible_iterations_ = self.n_required_iterations_ = len(rounds)
        self.min_resources_, self.max_resources_ = self.n_resources_[0], self.n_resources_[-1]
        last = np.flatnonzero(self.cv_results_["iter"] == len(rounds) - 1)
        means = self.cv_results_["mean_test_score"][last]
        self.best_index_ = int(last[int(np.nanargmax(means)) if np.isfinite(means).any() else 0])
        self.best_params_ = dict(rows[self.best_index_], max_iter=int(self.n_resources_[-1]))
        self.best_score_ = float(self.cv_results_["mean_test_score"][self.best_index_])
        self.multimetric_ = False
        self._refit(X_given, y_given, self.best_params_)
        return self

