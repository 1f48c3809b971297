"""Past one machine: the per-device analyses as (domain, bucket) tasks over the lake.

See docs/scaling.md. :func:`analyze_bucket` is the engine-agnostic unit of work;
:func:`run_dask` runs it on Dask distributed and attaches the results to the store.
"""

from tsfleet.scaleout.engine import DistributedRun, SchedulerUnreachable, run_dask
from tsfleet.scaleout.plan import DISTRIBUTED
from tsfleet.scaleout.tasks import analyze_bucket

__all__ = ["DISTRIBUTED", "DistributedRun", "SchedulerUnreachable", "analyze_bucket",
           "run_dask"]
