"""GridSearchCV and HalvingGridSearchCV over this package's estimators: scikit-learn's
signature subset and results (``cv_results_``, ``best_params_``, ``best_estimator_``), with
every fold x grid point of a shape trained as ONE stacked GPU job by the Rust library.

The candidates are those of ``sklearn.model_selection.ParameterGrid`` and the folds those of
``check_cv`` (``StratifiedKFold(5)`` for a classifier by default), so scores line up with
scikit-learn's ``GridSearchCV`` run on the same estimator. Candidates that differ only in
``learning_rate_init``, ``hidden_layer_sizes``, ``max_iter``, ``activation``, ``alpha`` or (for
SGD) ``momentum`` share one stacked search; other differences run one search each. Folds
whose training rows give another batch size (``batch_size='auto'`` under 200 rows) are searched
apart, so every fold model trains as the estimator alone would. Candidates with
``early_stopping=True`` are fitted fold by fold (their validation rows are scikit-learn's own
split of each fold's training rows), still on the GPU.
"""

import math
import numbers
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

    def _groups(self, candidates, n_train, indices):
        """The candidates (at `indices`) grouped into stacked searches for folds of `n_train`
        training rows."""
        groups = {}
        shared = clone(self.estimator)._new_seed()  # one draw unless the grid sets random_state
        for index in indices:
            params = candidates[index]
            est = clone(self.estimator).set_params(**params)
            seed = est._new_seed() if "random_state" in params else shared
            config = est._config(n_train, seed, est.max_iter, est._stopping())
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

    def _search(self, X, targets, group, folds):
        """Runs one group's stacked search on `folds`; per member: (fold scores, mean fit time)."""
        grid = {axis: [list(v) if axis == "hidden" else v for v in values] for axis, values in group.grid().items()}
        # The base takes the first member's values where the grid sets them (the Rust search
        # refuses a base the grid would silently override).
        base = dict(group.config)
        base.update({axis: list(v) if axis == "hidden" else v for axis, v in group.members[0][1].items()})
        report = _core.grid_search(X, base, grid, folds, scoring=self.scorer_, **targets)
        found = {}
        for result in report["results"]:
            point = result["params"]
            for index, values in group.members:
                if all(self._same(axis, value, point) for axis, value in values.items()):
                    found[index] = (np.asarray(result["fold_scores"], dtype=np.float64), result["mean_fit_time"])
        return found

    def _evaluate(self, X, y, targets, candidates, folds):
        """Every candidate's score on every fold, and its mean fit time: stacked GPU searches
        (one per group of candidates and per batch size the folds give), or fold by fold for
        candidates that stop early on their own validation rows."""
        scores = np.full((len(candidates), len(folds)), np.nan)
        fit_times = np.zeros(len(candidates))
        alone = [i for i, c in enumerate(candidates) if clone(self.estimator).set_params(**c).early_stopping]
        stacked = [i for i in range(len(candidates)) if i not in alone]
        # folds whose training-row counts give every candidate the same batch share searches
        by_batch = {}
        for k, (train, _) in enumerate(folds):
            key = tuple(clone(self.estimator).set_params(**candidates[i])._batch_quietly(len(train)) for i in stacked)
            by_batch.setdefault(key, []).append(k)
        for fold_ids in by_batch.values() if stacked else []:
            n_train = len(folds[fold_ids[0]][0])
            for group in self._groups(candidates, n_train, stacked):
                found = self._search(X, targets, group, [folds[k] for k in fold_ids])
                self.n_stacked_searches_ += 1
                for index, (fold_scores, fit_time) in found.items():
                    scores[index, fold_ids] = fold_scores
                    fit_times[index] += fit_time * len(fold_ids) / len(folds)
        scorer = get_scorer(self.scorer_)
        for index in alone:
            for k, (train, test) in enumerate(folds):
                start = time.perf_counter()
                try:
                    est = clone(self.estimator).set_params(**candidates[index]).fit(X[train], y[train])
                    fit_times[index] += (time.perf_counter() - start) / len(folds)
                    scores[index, k] = scorer(est, X[test], y[test])
                except TrainingError:
                    if isinstance(self.error_score, str) and self.error_score == "raise":
                        raise
        return scores, fit_times

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
        if isinstance(self.error_score, str) and self.error_score == "raise":
            if np.isnan(scores).any():
                raise TrainingError("a candidate's training failed (NaN scores) and error_score='raise'")
        else:
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
        self.n_stacked_searches_ = 0
        scores, fit_times = self._evaluate(X, y, targets, candidates, folds)
        self.cv_results_ = self._results(candidates, scores, fit_times)
        self.best_index_ = int(np.argmin(self.cv_results_["rank_test_score"]))
        self.best_params_ = candidates[self.best_index_]
        self.best_score_ = float(self.cv_results_["mean_test_score"][self.best_index_])
        self.multimetric_ = False
        self._refit(X_given, y_given, self.best_params_)
        return self


class HalvingGridSearchCV(_BaseSearch):
    """Successive halving over ``param_grid`` with epochs (``max_iter``) as the resource, as
    scikit-learn's ``HalvingGridSearchCV(resource='max_iter')`` schedules it: round i trains the
    remaining candidates ``min_resources_ * factor**i`` epochs on every fold and keeps the best
    ``ceil(n / factor)``; each round's candidates are trained as stacked GPU jobs.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from wgpu_mlp import HalvingGridSearchCV, MLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> grid = {"learning_rate_init": [1e-3, 3e-3, 1e-2, 3e-2]}
    >>> search = HalvingGridSearchCV(MLPClassifier(max_iter=90, random_state=0), grid, factor=3, cv=3).fit(X, y)
    >>> search.n_resources_
    [30, 90]
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

    def _check(self, candidates):
        if self.resource != "max_iter":
            raise ValueError(
                f"resource={self.resource!r}: the GPU halving spends epochs, use resource='max_iter' "
                "(or sklearn.model_selection.HalvingGridSearchCV for resource='n_samples')."
            )
        if any("max_iter" in c for c in candidates):
            raise ValueError("Cannot use parameter max_iter as the resource since it is part of the searched parameters.")
        if not (isinstance(self.factor, numbers.Real) and not isinstance(self.factor, bool) and self.factor > 1):
            raise ValueError(f"factor must be a number > 1, got {self.factor!r}.")
        if self.aggressive_elimination:
            raise ValueError("aggressive_elimination=True is not available on the GPU halving.")
        if self.return_train_score:
            raise ValueError("return_train_score=True is not available: the GPU scores the held-out folds only.")
        if self.max_resources == "auto":
            max_resources = int(self.estimator.max_iter)
        elif isinstance(self.max_resources, numbers.Integral) and self.max_resources > 0:
            max_resources = int(self.max_resources)
        else:
            raise ValueError(f"max_resources must be 'auto' or a positive int, got {self.max_resources!r}.")
        n_required = 1 + math.floor(math.log(len(candidates), self.factor))
        if self.min_resources == "exhaust":
            min_resources = max(1, max_resources // int(self.factor ** (n_required - 1)))
        elif self.min_resources == "smallest":
            min_resources = 1
        elif isinstance(self.min_resources, numbers.Integral) and not isinstance(self.min_resources, bool) \
                and self.min_resources > 0:
            min_resources = int(self.min_resources)
        else:
            raise ValueError(f"min_resources must be 'exhaust', 'smallest' or a positive int, got {self.min_resources!r}.")
        if min_resources > max_resources:
            raise ValueError(
                f"min_resources_={min_resources} is greater than max_resources_={max_resources}: lower min_resources "
                "or raise max_iter."
            )
        n_possible = 1 + math.floor(math.log(max_resources // min_resources, self.factor))
        return min_resources, max_resources, n_required, n_possible

    def fit(self, X, y):
        """Runs the rounds on (X, y) and refits the last round's best on all of it."""
        candidates = list(ParameterGrid(self.param_grid))
        min_resources, max_resources, n_required, n_possible = self._check(candidates)
        X_given, y_given = X, y
        X, y, folds, targets, probe = self._prepare(X, y)
        self.n_stacked_searches_ = 0
        remaining = list(range(len(candidates)))
        rows, scores, times, iters, resources = [], [], [], [], []
        self.n_candidates_, self.n_resources_ = [], []
        for itr in range(min(n_possible, n_required)):
            n_resources = min(int(self.factor**itr * min_resources), max_resources)
            params = [dict(candidates[i], max_iter=n_resources) for i in remaining]
            round_scores, round_times = self._evaluate(X, y, targets, params, folds)
            rows += params
            scores += list(round_scores)
            times += list(round_times)
            iters += [itr] * len(params)
            resources += [n_resources] * len(params)
            self.n_candidates_.append(len(params))
            self.n_resources_.append(n_resources)
            means = round_scores.mean(axis=1)
            order = np.argsort(-np.where(np.isnan(means), -np.inf, means), kind="stable")
            remaining = [remaining[i] for i in order[: math.ceil(len(remaining) / self.factor)]]
        extra = {"iter": np.asarray(iters), "n_resources": np.asarray(resources)}
        self.cv_results_ = self._results(rows, np.asarray(scores), times, extra)
        self.n_iterations_ = len(self.n_resources_)
        self.n_required_iterations_, self.n_possible_iterations_ = n_required, n_possible
        self.min_resources_, self.max_resources_ = min_resources, max_resources
        last = np.flatnonzero(self.cv_results_["iter"] == self.n_iterations_ - 1)
        means = self.cv_results_["mean_test_score"][last]
        self.best_index_ = int(last[int(np.nanargmax(means)) if np.isfinite(means).any() else 0])
        self.best_params_ = rows[self.best_index_]
        self.best_score_ = float(self.cv_results_["mean_test_score"][self.best_index_])
        self.multimetric_ = False
        self._refit(X_given, y_given, self.best_params_)
        return self
