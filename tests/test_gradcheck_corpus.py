"""The planted-bug corpus: no wrong gradient passes, no correct one fails.

The full corpus (1,100 correct cases and about as many wrong ones, see
:mod:`backprop.gradcheck.corpus`) runs in the slow suite; the default run
takes a fixed, spread-out sample of it. ``python bench/gradcheck_corpus.py``
runs the same corpus through torch.autograd.gradcheck and
jax.test_util.check_grads.
"""

from __future__ import annotations

import collections

import pytest

from backprop.gradcheck import gradcheck
from backprop.gradcheck.corpus import corpus

pytestmark = pytest.mark.gradcheck

CASES = corpus(1100, seed=0)


def outcomes(cases):
    counts = collections.Counter()
    wrong_verdicts = []
    for case in cases:
        verdict = gradcheck(case.loss_fn, case.grad_fn, case.params).verdict
        counts[(case.correct, case.smooth, case.resolvable, verdict)] += 1
        if (case.correct and verdict == "fail") or (
            not case.correct and verdict in ("pass", "kink")
        ):
            wrong_verdicts.append((case.name, verdict))
    return counts, wrong_verdicts


def test_the_corpus_is_as_large_and_as_varied_as_promised():
    correct = [c for c in CASES if c.correct]
    wrong = [c for c in CASES if not c.correct]
    assert len(correct) >= 1000 and len(wrong) >= 1000
    assert {c.family for c in wrong} == {"network", "kink", "curvature", "oscillation"}
    assert {c.loss_dtype for c in wrong} == {"float32", "float64"}
    assert max(c.offset for c in wrong) == 1e9
    bugs = {c.bug.split(":")[0] for c in wrong}
    assert {"scale", "missing_sigma_prime", "transposed", "sum_not_mean", "entry_zero",
            "entry_flip", "outside"} <= bugs  # fmt: skip


def test_a_spread_out_sample_of_the_corpus():
    counts, wrong_verdicts = outcomes(CASES[::97])
    assert wrong_verdicts == []
    assert sum(counts.values()) >= 20


@pytest.mark.slow
def test_the_full_corpus():
    counts, wrong_verdicts = outcomes(CASES)
    assert wrong_verdicts == []
    # Where the loss offset leaves anything to resolve, at most 5 % of the
    # smooth correct cases come back inconclusive (the rest of them can only).
    smooth_correct = sum(v for (cor, sm, res, _), v in counts.items() if cor and sm and res)
    inconclusive = counts[(True, True, True, "inconclusive")]
    assert inconclusive <= 0.05 * smooth_correct, (inconclusive, smooth_correct)
