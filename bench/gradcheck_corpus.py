"""The planted-bug corpus through three gradient checkers, as a Markdown table.

    PYTHONPATH=. python bench/gradcheck_corpus.py [--pairs 1100] [--seed 0]

Checkers, each at its defaults, on the same functions and points
(:func:`backprop.gradcheck.corpus.corpus`):

- ``backprop.gradcheck`` (pass / kink count as passes, fail, inconclusive);
- ``torch.autograd.gradcheck``: the hand-written gradient wrapped in a
  ``torch.autograd.Function`` (the way a PyTorch user checks a custom
  backward), float64 tensors, eps=1e-6, atol=1e-5, rtol=1e-3;
- ``jax.test_util.check_grads(f, args, order=1, modes=["rev"])``: the
  gradient as a ``jax.custom_vjp`` around ``jax.pure_callback`` (the way a
  JAX user checks a custom VJP), inside ``jax.enable_x64(True)``; it checks
  one random direction per call, at eps=1e-4.

The peers have no third verdict: anything but a pass counts as a failure.
A checker missing from the environment is skipped. Times are wall-clock on
whatever machine runs it.
"""

from __future__ import annotations

import argparse
import collections
import time
from typing import Any

import numpy as np

from backprop.gradcheck import gradcheck
from backprop.gradcheck.corpus import Case, corpus


def ours(case: Case) -> str:
    """'pass', 'fail' or 'inconclusive' (a valid subgradient at a kink is a pass)."""
    verdict = gradcheck(case.loss_fn, case.grad_fn, case.params).verdict
    return "pass" if verdict == "kink" else verdict


def torch_checker() -> Any:
    import torch

    def check(case: Case) -> str:
        keys = list(case.params)

        class Wrapped(torch.autograd.Function):
            @staticmethod
            def forward(ctx: Any, *ts: Any) -> Any:
                ctx.save_for_backward(*ts)
                p = {k: t.detach().numpy() for k, t in zip(keys, ts, strict=True)}
                return torch.tensor(float(case.loss_fn(p)), dtype=torch.float64)

            @staticmethod
            def backward(ctx: Any, g: Any) -> Any:
                p = {k: t.detach().numpy() for k, t in zip(keys, ctx.saved_tensors, strict=True)}
                grads = case.grad_fn(p)
                return tuple(
                    g * torch.from_numpy(np.array(grads[k], dtype=np.float64)) for k in keys
                )

        inputs = tuple(
            torch.tensor(np.asarray(case.params[k], dtype=np.float64), requires_grad=True)
            for k in keys
        )
        try:
            ok = torch.autograd.gradcheck(Wrapped.apply, inputs, raise_exception=False)
        except Exception:  # any refusal counts as a failure
            ok = False
        return "pass" if ok else "fail"

    return check


def jax_checker() -> Any:
    import jax
    import jax.numpy as jnp
    from jax.test_util import check_grads

    def check(case: Case) -> str:
        keys = list(case.params)
        shapes = [np.shape(case.params[k]) for k in keys]

        def loss_np(*arrays: Any) -> Any:
            return np.float64(case.loss_fn(dict(zip(keys, map(np.asarray, arrays), strict=True))))

        def grad_np(*arrays: Any) -> Any:
            g = case.grad_fn(dict(zip(keys, map(np.asarray, arrays), strict=True)))
            return tuple(np.asarray(g[k], dtype=np.float64) for k in keys)

        @jax.custom_vjp
        def f(*arrays: Any) -> Any:
            return jax.pure_callback(loss_np, jax.ShapeDtypeStruct((), jnp.float64), *arrays)

        def fwd(*arrays: Any) -> Any:
            return f(*arrays), arrays

        def bwd(arrays: Any, g: Any) -> Any:
            out = tuple(jax.ShapeDtypeStruct(s, jnp.float64) for s in shapes)
            grads = jax.pure_callback(grad_np, out, *arrays)
            return tuple(g * gi for gi in grads)

        f.defvjp(fwd, bwd)
        with jax.enable_x64(True):
            args = tuple(jnp.asarray(np.asarray(case.params[k], dtype=np.float64)) for k in keys)
            try:
                check_grads(f, args, order=1, modes=["rev"])
                return "pass"
            except AssertionError:
                return "fail"

    return check


def run(cases: list[Case], check: Any) -> dict[str, Any]:
    counts: collections.Counter[tuple[bool, bool, bool, str]] = collections.Counter()
    start = time.perf_counter()
    for case in cases:
        counts[(case.correct, case.smooth, case.resolvable, check(case))] += 1
    return {"counts": counts, "seconds": time.perf_counter() - start}


def table(cases: list[Case], results: dict[str, dict[str, Any]]) -> str:
    wrong = sum(not c.correct for c in cases)
    right = sum(c.correct for c in cases)
    smooth_right = sum(c.correct and c.smooth for c in cases)
    resolvable = sum(c.correct and c.smooth and c.resolvable for c in cases)
    lines = [
        f"| checker | wrong passed (of {wrong}) | correct failed (of {right}) | "
        f"inconclusive: correct / smooth correct (of {smooth_right}) / smooth correct, "
        f"offset resolvable (of {resolvable}) / wrong | time |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        c = r["counts"]

        def n(
            correct: bool, verdict: str, only: bool = False, res: bool = False, c: Any = c
        ) -> int:
            return sum(
                v
                for (cor, sm, rs, ver), v in c.items()
                if cor == correct and ver == verdict and (not only or sm) and (not res or rs)
            )

        inc_smooth = n(True, "inconclusive", True)
        inc_res = n(True, "inconclusive", True, True)
        inconclusive = (
            f"{n(True, 'inconclusive')} / {inc_smooth} ({100 * inc_smooth / smooth_right:.1f} %)"
            f" / {inc_res} ({100 * inc_res / resolvable:.1f} %) / {n(False, 'inconclusive')}"
            if name == "backprop.gradcheck"
            else "- (no such verdict)"
        )
        lines.append(
            f"| {name} | {n(False, 'pass')} | {n(True, 'fail')} | {inconclusive} | "
            f"{r['seconds']:.0f} s |"
        )
    return "\n".join(lines)


def breakdown(cases: list[Case]) -> str:
    """Our verdicts per family and correctness (a second run of our checker)."""
    counts: collections.Counter[tuple[str, bool, str, str]] = collections.Counter()
    for case in cases:
        counts[(case.family, case.correct, case.loss_dtype, ours(case))] += 1
    lines = [
        "| family | correct | loss dtype | pass | fail | inconclusive |",
        "|---|---|---|---|---|---|",
    ]
    for fam, cor, dt in sorted({k[:3] for k in counts}):
        row = [counts[(fam, cor, dt, v)] for v in ("pass", "fail", "inconclusive")]
        lines.append(f"| {fam} | {cor} | {dt} | {row[0]} | {row[1]} | {row[2]} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--breakdown", action="store_true", help="our verdicts per family")
    args = parser.parse_args(argv)
    cases = corpus(args.pairs, args.seed)
    checkers: dict[str, Any] = {"backprop.gradcheck": ours}
    for name, make in (
        ("torch.autograd.gradcheck", torch_checker),
        ("jax.test_util.check_grads", jax_checker),
    ):
        try:
            checkers[name] = make()
        except ImportError:
            print(f"{name}: skipped (not installed)")
    results = {name: run(cases, check) for name, check in checkers.items()}
    print(table(cases, results))
    if args.breakdown:
        print()
        print(breakdown(cases))


if __name__ == "__main__":
    main()
