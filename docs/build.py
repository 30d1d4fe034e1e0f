"""Build the API reference from the docstrings: ``python docs/build.py [OUT_DIR]``.

Writes HTML (pdoc, NumPy docstring style) for every public module of
``backprop`` (kernels included, as ``backprop.kernels``) to OUT_DIR (default
``docs/api``), and exits
with status 1 if pdoc warned about anything (CI runs it that way).
"""

from __future__ import annotations

import pkgutil
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def public_modules() -> list[str]:
    """backprop, backprop.kernels and their public submodules, each named once.

    pdoc documents a package's subpackages' modules and the submodules its
    ``__all__`` names by itself, so only the rest are listed.
    """
    import backprop
    import backprop.kernels as kernels

    # the estimators load on first use (they import scikit-learn): load them now,
    # so that pdoc finds every name of backprop.__all__ in the module
    for name in backprop.__all__:
        getattr(backprop, name)

    names = []
    for package in (backprop, kernels):
        if package.__name__ not in names:
            names.append(package.__name__)
        exported = set(getattr(package, "__all__", ()))
        for info in pkgutil.iter_modules(package.__path__, prefix=f"{package.__name__}."):
            leaf = info.name.rsplit(".", 1)[1]
            if not leaf.startswith("_") and leaf not in exported and info.name not in names:
                names.append(info.name)
    return names


def main() -> int:
    import pdoc
    import pdoc.render

    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "api"
    pdoc.render.configure(docformat="numpy", show_source=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pdoc.pdoc(*public_modules(), output_directory=out)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    print(f"API reference written to {out / 'index.html'}")
    return 1 if caught else 0


if __name__ == "__main__":
    sys.exit(main())
