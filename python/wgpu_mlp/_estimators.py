"""MLPClassifier and MLPRegressor: scikit-learn's estimators, trained on the GPU.

The parameters, defaults and fitted attributes are scikit-learn's (``sklearn.neural_network``);
input validation is scikit-learn's own (``validate_data``), so the same inputs are accepted
and refused with the same messages. Training, prediction and the model file are the Rust
library's (``wgpu_mlp._core``): every epoch is one GPU submit, the GIL released while it runs.
"""

import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _core

_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
_SOLVERS = ("adam", "sgd")
_LEARNING_RATES = ("constant", "adaptive")


def _check_params(est):
    """Checks the constructor parameters the way scikit-learn's MLP does (a ValueError that
    names the parameter, what it must be and what it got); returns the hidden sizes."""
    name = type(est).__name__

    def fail(param, must):
        raise ValueError(f"The '{param}' parameter of {name} must be {must}. Got {getattr(est, param)!r} instead.")

    def number(param, low, high=None, integer=False, low_open=False, high_open=True):
        value = getattr(est, param)
        kind = numbers.Integral if integer else numbers.Real
        if not isinstance(value, kind) or isinstance(value, bool):
            fail(param, f"{'an int' if integer else 'a float'} in {'(' if low_open else '['}{low}, {high or 'inf'}{')' if high_open else ']'}")
        below = value <= low if low_open else value < low
        above = high is not None and (value >= high if high_open else value > high)
        if below or above:
            fail(param, f"in {'(' if low_open else '['}{low}, {high or 'inf'}{')' if high_open else ']'}")

    sizes = est.hidden_layer_sizes
    if isinstance(sizes, numbers.Integral) and not isinstance(sizes, bool):
        sizes = [sizes]
    try:
        sizes = list(sizes)
    except TypeError:
        fail("hidden_layer_sizes", "an int or a sequence of ints > 0")
    if any(not isinstance(s, numbers.Integral) or isinstance(s, bool) or s < 1 for s in sizes):
        fail("hidden_layer_sizes", "an int or a sequence of ints > 0")
    if not isinstance(est.activation, str) or est.activation not in _ACTIVATIONS:
        fail("activation", f"one of {sorted(_ACTIVATIONS)}")
    if not isinstance(est.solver, str) or est.solver not in _SOLVERS:
        fail("solver", "'adam' or 'sgd' on the GPU (lbfgs is a full-batch CPU method: use sklearn.neural_network for it)")
    if not isinstance(est.learning_rate, str) or est.learning_rate not in _LEARNING_RATES + ("invscaling",):
        fail("learning_rate", f"one of {list(_LEARNING_RATES)}")
    if est.learning_rate == "invscaling" and est.solver == "sgd":
        fail("learning_rate", "'constant' or 'adaptive' on the GPU ('invscaling' is not available)")
    number("alpha", 0)
    number("learning_rate_init", 0, low_open=True)
    number("max_iter", 1, integer=True)
    number("tol", 0)
    number("n_iter_no_change", 1, integer=True)
    number("epsilon", 0, low_open=True)
    if not (isinstance(est.batch_size, str) and est.batch_size == "auto"):
        number("batch_size", 1, integer=True)
    number("momentum", 0, 1, high_open=False)
    number("beta_1", 0, 1)
    number("beta_2", 0, 1)
    number("validation_fraction", 0, 1)
    if est.early_stopping and est.validation_fraction == 0:
        fail("validation_fraction", "> 0 with early_stopping=True (the rows early stopping watches)")
    return [int(s) for s in sizes]


def _dense(X):
    """Sparse rows as the dense float32 rows the GPU kernels take (as scikit-learn's MLP
    accepts CSR input)."""
    if hasattr(X, "toarray"):
        return np.ascontiguousarray(X.toarray(), dtype=np.float32)
    return X


class _BaseMLP(BaseEstimator):
    """What the classifier and regressor share: parameters, the GPU config, fit and partial_fit."""

    _task = None  # "classifier" or "regressor"

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun

    # --- the settings the GPU trains with -------------------------------------------------

    def _batch(self, n_samples):
        if self.batch_size == "auto":
            return min(200, n_samples)
        if not 1 <= self.batch_size <= n_samples:
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going to be clipped")
        return int(np.clip(self.batch_size, 1, n_samples))

    def _config(self, n_samples, seed, epochs, stopping):
        """The Rust TrainConfig's settings for these parameters (see python/src/config.rs).

        scikit-learn's ``alpha`` adds ``alpha * W / batch`` to each batch's gradient: an L2
        penalty coupled into the gradient, here ``weight_decay = alpha / batch``."""
        sizes = _check_params(self)
        batch = self._batch(n_samples)
        return {
            "task": self._task,
            "hidden": sizes,
            "activation": _ACTIVATIONS[self.activation],
            "solver": self.solver,
            "lr": float(self.learning_rate_init),
            "weight_decay": float(self.alpha) / batch,
            "momentum": float(self.momentum),
            "nesterov": bool(self.nesterovs_momentum),
            "beta1": float(self.beta_1),
            "beta2": float(self.beta_2),
            "eps": float(self.epsilon),
            "schedule": self.learning_rate if self.solver == "sgd" else "constant",
            "plateau_patience": int(self.n_iter_no_change),
            "epochs": int(epochs),
            "batch_size": batch,
            "seed": int(seed),
            # scikit-learn's Glorot-uniform initialisation, its gain 2 for logistic nets
            "init_gain": 2.0 if self.activation == "logistic" else 6.0,
            "shuffle": bool(self.shuffle),
            # scikit-learn stops once MORE than n_iter_no_change epochs in a row missed tol
            "early_stopping": None if stopping is None else int(self.n_iter_no_change) + 1,
            "monitor": stopping or "training",
            "tol": float(self.tol),
            "validation_fraction": float(self.validation_fraction) if self.early_stopping else 0.1,
        }

    def _stopping(self):
        """What a fit stops on: "validation" (early_stopping), "training" (scikit-learn's
        default: the training loss and tol), or None (adaptive SGD divides its rate instead)."""
        if self.early_stopping:
            return "validation"
        if self.solver == "sgd" and self.learning_rate == "adaptive":
            return None
        return "training"

    def _batch_quietly(self, n_samples):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self._batch(n_samples)

    def _new_seed(self):
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    # --- fitting ----------------------------------------------------------------------------

    def _targets(self, y):
        """Keyword arguments of ``_core`` carrying the encoded targets."""
        raise NotImplementedError

    def _fit(self, X, y, incremental):
        first = not (incremental or self.warm_start) or not hasattr(self, "_model")
        X, y = self._validate_xy(X, y, reset=first)
        targets = self._targets(y)
        n = X.shape[0]
        if first:
            self._seed = self._new_seed()
        early = self.early_stopping and not incremental
        train_rows, val_rows = None, None
        if early:
            train_rows, val_rows = self._split(y, n)
        # scikit-learn stops on the training loss unless early_stopping (validation rows);
        # partial_fit trains exactly one epoch.
        stopping = None if incremental else self._stopping()
        done = 0 if first else self._model.epochs_done
        config = self._config(n, self._seed, done + (1 if incremental else self.max_iter), stopping)
        rows = {"train_rows": train_rows, "validation_rows": val_rows}
        if first:
            self._model = _core.fit(X, config, **rows, **targets)
        else:
            self._model = _core.resume(self._model, X, config, **rows, **targets)
        self._record(self._model.history(), y, val_rows, incremental)
        return self

    def _split(self, y, n):
        """The rows early stopping watches: scikit-learn's split (stratified for classes)."""
        stratify = y if self._task == "classifier" else None
        rows = np.arange(n)
        try:
            train, val = train_test_split(
                rows, test_size=self.validation_fraction, random_state=self._seed, stratify=stratify
            )
        except ValueError:
            train, val = train_test_split(rows, test_size=self.validation_fraction, random_state=self._seed)
        if len(train) == 0 or len(val) == 0:
            raise ValueError(
                f"early_stopping needs rows on both sides of validation_fraction={self.validation_fraction}; "
                f"got {n} samples: give more samples or set early_stopping=False."
            )
        return [int(i) for i in np.sort(train)], [int(i) for i in np.sort(val)]

    def _record(self, history, y, val_rows, incremental):
        losses = [float(v) for v in history["train_loss"]]
        previous = getattr(self, "loss_curve_", []) if incremental or self.warm_start else []
        self.loss_curve_ = list(previous) + losses
        self.n_iter_ = (getattr(self, "n_iter_", 0) if incremental or self.warm_start else 0) + len(losses)
        self.t_ = self.n_iter_ * len(y)
        self.n_layers_ = len(self._model.sizes)
        self.n_outputs_ = self._model.n_outputs
        self.loss_ = self.loss_curve_[-1] if self.loss_curve_ else None
        self.out_activation_ = "softmax" if self._task == "classifier" else "identity"
        if self.early_stopping and not incremental:
            self.validation_scores_ = self._validation_scores(history, y, val_rows)
            self.best_validation_score_ = float(np.nanmax(self.validation_scores_))
            self.best_loss_ = None
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
            self.best_loss_ = float(np.min(self.loss_curve_)) if self.loss_curve_ else None
        stopped_early = len(losses) < self.max_iter
        if not incremental and not stopped_early:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the optimization "
                "hasn't converged yet.",
                ConvergenceWarning,
            )

    # --- what a fitted model exposes ---------------------------------------------------------

    @property
    def coefs_(self):
        """Each layer's weights, shape (n_in, n_out), as float32 arrays read from the GPU."""
        check_is_fitted(self, "_model")
        return [w for w, _ in self._model.parameters()]

    @property
    def intercepts_(self):
        """Each layer's bias, shape (n_out,), as float32 arrays read from the GPU."""
        check_is_fitted(self, "_model")
        return [b for _, b in self._model.parameters()]

    def _outputs(self, X):
        check_is_fitted(self, "_model")
        X = validate_data(self, X, reset=False, dtype=np.float32, order="C", accept_sparse="csr")
        return _dense(X)

    def to_bytes(self):
        """The fitted network as the library's model file (what the CLI's ``predict`` and
        ``wgpu_mlp.Model.load`` in Rust read)."""
        check_is_fitted(self, "_model")
        return bytes(self._model.to_bytes())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = True  # CSR rows are densified for the GPU
        tags.non_deterministic = False
        return tags


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier trained on the GPU: scikit-learn's ``MLPClassifier``
    (same parameters, defaults and fitted attributes) with a softmax output of one unit per
    class and the cross-entropy loss.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from wgpu_mlp import MLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifier(max_iter=300, random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:1]).shape
    (1, 3)
    """

    _task = "classifier"

    def _validate_xy(self, X, y, reset):
        X, y = validate_data(
            self, X, y, reset=reset, dtype=np.float32, order="C", multi_output=True, accept_sparse="csr"
        )
        X = _dense(X)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        elif y.ndim != 1:
            raise ValueError(f"MLPClassifier takes one label per sample; got y of shape {y.shape}.")
        check_classification_targets(y)
        return X, y

    def _targets(self, y):
        codes = np.searchsorted(self.classes_, y)
        if np.any(codes >= len(self.classes_)) or np.any(self.classes_[np.minimum(codes, len(self.classes_) - 1)] != y):
            unknown = sorted(set(np.asarray(y).tolist()) - set(self.classes_.tolist()))
            raise ValueError(f"y contains labels not in classes {self.classes_.tolist()}: {unknown}")
        return {"y_codes": codes.astype(np.int64), "n_classes": len(self.classes_)}

    def fit(self, X, y):
        """Fits the model to data matrix X and targets y; returns self."""
        _check_params(self)
        if not (self.warm_start and hasattr(self, "_model")):
            _, y_checked = self._validate_xy(X, y, reset=True)
            self._set_classes(np.unique(y_checked))
        return self._fit(X, y, incremental=False)

    def _set_classes(self, classes):
        if len(classes) < 2:
            raise ValueError(
                f"MLPClassifier needs samples of at least 2 classes in the data, but the data contains only one "
                f"class: {classes[0]!r}."
            )
        self._label_encoder = LabelEncoder().fit(classes)
        self.classes_ = self._label_encoder.classes_

    def partial_fit(self, X, y, classes=None):
        """One epoch over (X, y), continuing from the current weights. The first call needs
        ``classes``, every label that will ever appear."""
        _check_params(self)
        if not hasattr(self, "_model"):
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
            self._set_classes(np.unique(np.asarray(classes)))
        elif classes is not None and not np.array_equal(np.unique(np.asarray(classes)), self.classes_):
            raise ValueError(f"`classes={classes!r}` is not the same as on the first call to partial_fit.")
        return self._fit(X, y, incremental=True)

    def predict_proba(self, X):
        """Probability of each class (columns in ``classes_`` order), shape (n_samples, n_classes)."""
        X = self._outputs(X)
        probabilities = self._model.predict_proba(X).astype(np.float64)
        # the float32 softmax, renormalised in float64: rows sum to 1 as scikit-learn checks
        return probabilities / probabilities.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X):
        """Log of ``predict_proba``."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """The most probable class of each sample."""
        probabilities = self.predict_proba(X)
        return self.classes_[np.argmax(probabilities, axis=1)]

    def _validation_scores(self, history, y, val_rows):
        return [float("nan") if a is None else float(a) for a in history["val_accuracy"]]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = False
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor trained on the GPU: scikit-learn's ``MLPRegressor``
    (same parameters, defaults and fitted attributes), identity outputs and the squared
    error, one or several targets.

    Examples
    --------
    >>> import numpy as np
    >>> from wgpu_mlp import MLPRegressor
    >>> X = np.linspace(-1, 1, 200).reshape(-1, 1)
    >>> reg = MLPRegressor(hidden_layer_sizes=(32,), max_iter=500, random_state=0).fit(X, 2 * X.ravel())
    >>> reg.predict(X[:2]).shape
    (2,)
    """

    _task = "regressor"

    def _validate_xy(self, X, y, reset):
        X, y = validate_data(
            self, X, y, reset=reset, dtype=np.float32, order="C", multi_output=True, y_numeric=True, accept_sparse="csr"
        )
        X = _dense(X)
        if reset:
            self._y_2d = y.ndim == 2
        return X, y

    def _targets(self, y):
        values = np.ascontiguousarray(np.asarray(y, dtype=np.float32).reshape(len(y), -1))
        return {"y_values": values}

    def fit(self, X, y):
        """Fits the model to data matrix X and target(s) y; returns self."""
        _check_params(self)
        return self._fit(X, y, incremental=False)

    def partial_fit(self, X, y):
        """One epoch over (X, y), continuing from the current weights."""
        _check_params(self)
        return self._fit(X, y, incremental=True)

    def predict(self, X):
        """The predicted value(s) of each sample: shape (n_samples,) for one target."""
        X = self._outputs(X)
        out = self._model.predict(X).astype(np.float64)
        return out.ravel() if out.shape[1] == 1 and not self._y_2d else out

    def _validation_scores(self, history, y, val_rows):
        # R² from the validation loss (½ Σ_j (y − t)² per sample, mean over samples):
        # 1 − Σ residual² / Σ (t − mean)², exact for one target, the variance-weighted
        # average of the targets' R² for several.
        t = np.asarray(y, dtype=np.float64).reshape(len(y), -1)[val_rows]
        total = float(((t - t.mean(axis=0)) ** 2).sum(axis=1).mean())
        out = []
        for loss in history["val_loss"]:
            out.append(float("nan") if loss is None or total == 0 else 1.0 - 2.0 * float(loss) / total)
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
