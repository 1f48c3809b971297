"""Network domain: gateway distribution, load, imbalance, redundancy, failures,
churn and a rebalancing plan."""

from tsfleet.network.api import Network
from tsfleet.network.fairness import imbalance, jain_index
from tsfleet.network.forecast import trend_to_capacity
from tsfleet.network.plan import Plan
from tsfleet.network.rebalance import Rebalance, rebalance
from tsfleet.network.saturation import HingeFit, fit_hinge

__all__ = ["HingeFit", "Network", "Plan", "Rebalance", "fit_hinge", "imbalance", "jain_index",
           "rebalance", "trend_to_capacity"]
