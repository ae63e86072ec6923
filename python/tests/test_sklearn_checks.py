"""scikit-learn's own estimator checks (``check_estimator``), one pytest test per check, for
both estimators. No check is exempted: ``EXPECTED_FAILED_CHECKS`` is scikit-learn's
mechanism for declaring one (with the reason) and it is empty."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from wgpu_mlp import MLPClassifier, MLPRegressor

EXPECTED_FAILED_CHECKS = {}


@parametrize_with_checks(
    [MLPClassifier(), MLPRegressor()],
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
