"""GX's import without the modules no suite uses, which still work the moment something uses them."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=None, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip()


def test_gx_is_imported_without_scipy_stats_and_altair_which_load_on_first_use():
    out = _run(
        """
        import sys
        import inspect

        import include.checksum.validation  # imports GX
        inspect.stack()  # what GX does for every Decimal metric: it reads every module's __file__
        print("stats loaded" if "scipy.stats._stats_py" in sys.modules else "stats deferred")
        print("altair loaded" if "altair.vegalite" in sys.modules else "altair deferred")

        import scipy.stats._distn_infrastructure as infrastructure  # a submodule first: imported once
        from scipy import stats  # what GX's KL-divergence expectation holds

        print(isinstance(stats.norm, infrastructure.rv_continuous))
        print(round(float(stats.entropy([0.5, 0.5], base=2)), 6))
        import scipy.stats
        print(sys.modules["scipy.stats"] is scipy.stats and type(scipy.stats).__name__)
        import scipy.stats.distributions  # a submodule reads the package's __path__
        print(scipy.stats.distributions.norm.cdf(0))
        import altair
        print(hasattr(altair, "Chart"))
        """
    )
    assert out.splitlines() == ["stats deferred", "altair deferred", "True", "1.0", "module", "0.5", "True"]
