"""Research statistics that say how far a backtest's figures can be trusted.

One module per kind of thing, plain Python and NumPy, no I/O:

* ``returns``: a run's daily returns and a sweep's returns matrix, on the conventions of
  ``services.backtest.statistics`` (the same Sharpe ratio as everywhere in the workbench);
* ``sharpe``: probabilistic Sharpe ratio, minimum track record length, deflated Sharpe ratio;
* ``overfitting``: probability of backtest overfitting by combinatorially symmetric
  cross-validation;
* ``monte_carlo``: bootstrap and shuffled-order Monte Carlo of a run's trades;
* ``stability``: local stability of a sweep's metric over its parameter grid.

Every statistic returns a frozen dataclass holding its inputs, its value and a one-line reading
for a trader; input it cannot work with raises ``ValidationError`` with one line saying why.
"""

from services.research.monte_carlo import TradeMonteCarlo, monte_carlo_trades, trade_returns
from services.research.overfitting import OverfittingProbability, probability_of_overfitting
from services.research.returns import ReturnsMatrix, run_returns
from services.research.sharpe import (
    DeflatedSharpe,
    MinimumTrackRecord,
    ProbabilisticSharpe,
    deflated_sharpe,
    expected_maximum_sharpe,
    minimum_track_record,
    probabilistic_sharpe,
    probabilistic_sharpes,
)
from services.research.stability import ParameterStability, parameter_stability

__all__ = [
    "DeflatedSharpe",
    "MinimumTrackRecord",
    "OverfittingProbability",
    "ParameterStability",
    "ProbabilisticSharpe",
    "ReturnsMatrix",
    "TradeMonteCarlo",
    "deflated_sharpe",
    "expected_maximum_sharpe",
    "minimum_track_record",
    "monte_carlo_trades",
    "parameter_stability",
    "probabilistic_sharpe",
    "probabilistic_sharpes",
    "probability_of_overfitting",
    "run_returns",
    "trade_returns",
]
