"""scikit-learn's own MLP tests, run against backprop's estimators.

Every test function of the installed scikit-learn's
``sklearn/neural_network/tests/test_mlp.py`` is collected here with
``MLPClassifier`` / ``MLPRegressor`` replaced by ours: the module's names are
patched for the duration of each test, and the parameter lists that name
scikit-learn's classes are rebuilt with ours. Nothing is skipped: the
private attributes those tests read (``_loss_grad_lbfgs``,
``_optimizer.learning_rate``, ``_no_improvement_count``) exist here with
scikit-learn's meaning. ``test_preserve_feature_names`` needs pandas and
skips without it, as it does in scikit-learn. Every test runs twice, with
``backend="numpy"`` and ``backend="jax"`` as our classes' default (the JAX
backend runs many epochs per compiled call, with scikit-learn's stopping
rule in the graph); on JAX the Poisson test is skipped (:data:`NUMPY_ONLY`).

Then ``check_estimator`` for both classes on both backends: every check scikit-learn's own
MLP passes, ours passes. The whole module is slow (scikit-learn's tests
train hundreds of networks): ``@pytest.mark.slow``.
"""

from __future__ import annotations

import types

import numpy as np
import pytest

sk_mlp = pytest.importorskip("sklearn.neural_network.tests.test_mlp")
from sklearn.neural_network import MLPClassifier as SkClassifier  # noqa: E402
from sklearn.neural_network import MLPRegressor as SkRegressor  # noqa: E402

from backprop import MLPClassifier, MLPRegressor  # noqa: E402
from tests.conftest import HAVE_JAX  # noqa: E402

pytestmark = pytest.mark.slow

OURS = {SkClassifier: MLPClassifier, SkRegressor: MLPRegressor}


NUMPY_ONLY = {
    "test_mlp_vs_poisson_glm_equivalent": "loss='poisson' runs on backend='numpy' only",
}
"""scikit-learn's tests of what the JAX backend does not run, with the reason."""


@pytest.fixture(autouse=True, params=["numpy", "jax"])
def _ours_in_place_of_scikit_learns(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Our classes in scikit-learn's module, their default backend each of ours in turn."""
    backend = request.param
    if backend == "jax":
        if not HAVE_JAX:
            pytest.skip("JAX is not installed")
        reason = NUMPY_ONLY.get(request.node.originalname)
        if reason:
            pytest.skip(reason)
    monkeypatch.setattr(sk_mlp, "MLPClassifier", MLPClassifier)
    monkeypatch.setattr(sk_mlp, "MLPRegressor", MLPRegressor)
    for cls in OURS.values():
        monkeypatch.setitem(cls.__init__.__kwdefaults__, "backend", backend)


@pytest.fixture
def global_random_seed() -> int:
    """scikit-learn's conftest fixture, at its default seed."""
    return 42


def _swap(value: object) -> object:
    if isinstance(value, type) and value in OURS:
        return OURS[value]
    if isinstance(value, (list, tuple)):
        return type(value)(_swap(v) for v in value)
    return value


def _adopt(fn: types.FunctionType) -> types.FunctionType:
    """A copy of one of scikit-learn's tests whose parametrize lists name our classes."""
    copy = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__)
    copy.__doc__ = fn.__doc__
    marks = list(getattr(fn, "pytestmark", []))
    for mark in reversed(marks):
        if mark.name == "parametrize":
            names, values = mark.args[0], mark.args[1]
            copy = pytest.mark.parametrize(names, [_swap(v) for v in values], **mark.kwargs)(copy)
        else:
            copy = getattr(pytest.mark, mark.name)(*mark.args, **mark.kwargs)(copy)
    return copy


SK_TESTS = sorted(
    name for name, obj in vars(sk_mlp).items() if name.startswith("test_") and callable(obj)
)
for _name in SK_TESTS:
    globals()[_name] = _adopt(vars(sk_mlp)[_name])


def test_every_scikit_learn_test_is_collected():
    assert len(SK_TESTS) >= 40, SK_TESTS


# --- check_estimator --------------------------------------------------------------


def _check_results(estimator: object) -> dict[str, str]:
    from sklearn.utils.estimator_checks import check_estimator

    with np.errstate(all="ignore"):
        results = check_estimator(estimator, on_fail=None)
    return {r["check_name"]: r["status"] for r in results}


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize(
    ("ours", "theirs"), [(MLPClassifier, SkClassifier), (MLPRegressor, SkRegressor)]
)
def test_check_estimator_passes_what_scikit_learn_passes(ours, theirs):
    mine = _check_results(ours(max_iter=50, random_state=0))
    reference = _check_results(theirs(max_iter=50, random_state=0))
    failing = sorted(
        name
        for name, status in reference.items()
        if status == "passed" and mine.get(name) != "passed"
    )
    assert not failing, {name: mine.get(name) for name in failing}


def test_the_adopted_tests_run_our_classes():
    assert sk_mlp.MLPClassifier is MLPClassifier and sk_mlp.MLPRegressor is MLPRegressor
    marks = [m for m in globals()["test_early_stopping"].pytestmark if m.name == "parametrize"]
    assert list(marks[0].args[1]) == [MLPClassifier, MLPRegressor]
