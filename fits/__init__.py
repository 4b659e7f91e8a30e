"""fits: scaling laws, the robust fitter, bootstrap, diagnostics, prediction and recommendation.

The public API (docs/api.md walks through it)::

    import fits
    runs = fits.read_table("results.parquet")           # or a CSV, with mapping= / derive_d= / where=
    res = fits.fit(runs, "chinchilla")                   # a registered name or any `fits.Law`
    print(res.summary())                                 # a table in a notebook
    fits.predict(res, {"N": [1e9], "D": [2e10]}).table   # prediction, lower, upper
    fits.recommend(1e21, fit=res).best                   # N, D and precision for a budget
    fits.backtest(runs, "chinchilla").table              # fit small runs, predict the larger ones
    res = fits.fit_auto(runs)                            # the form that backtests best (--law auto)
    law, params = fits.published("kumar2024")            # published constants, no data needed

Only numpy is imported with the package; pandas, scipy and matplotlib load when a function needs them.
"""

import fits.forms  # noqa: F401  (registers chinchilla-tied, gadre2024, kaplan2020, muennighoff2023)
from fits.backtest import BacktestResult, backtest
from fits.dataset import FitData, fit_data, read_table
from fits.law import Law, Param
from fits.laws import get_law, list_laws, published, register_law
from fits.pipeline import fit
from fits.prediction import Prediction, predict
from fits.recommendation import Recommendation, recommend
from fits.results import FitResult, Summary
from fits.selection import Selection, fit_auto, select_law

__all__ = [
    "BacktestResult",
    "FitData",
    "FitResult",
    "Law",
    "Param",
    "Prediction",
    "Recommendation",
    "Selection",
    "Summary",
    "backtest",
    "fit",
    "fit_auto",
    "fit_data",
    "get_law",
    "list_laws",
    "predict",
    "published",
    "read_table",
    "recommend",
    "register_law",
    "select_law",
]
