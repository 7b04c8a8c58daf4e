"""A Ray cluster of two nodes on this machine, and the launcher the tests use on it.

Ray's own cluster utilities (``ray.cluster_utils.Cluster``) start a head node and a second
raylet; this process joins as the driver. Each node offers one CPU and a little object store
(the tests move no objects through it); the second node also offers the custom resource
``n2``, so a test can ask for it. The actors reserve no CPU by default, so pools of several
workers fit.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from snakepit_trio.contrib.ray import RayLauncher

ROOT = str(pathlib.Path(__file__).resolve().parents[1])
STORE = 80 * 1024 * 1024  # bytes of object store per node


@contextmanager
def two_node_cluster() -> Iterator[Any]:
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "object_store_memory": STORE, "include_dashboard": False},
    )
    try:
        cluster.add_node(num_cpus=1, resources={"n2": 1}, object_store_memory=STORE)
        ray.init(address=cluster.address, logging_level="ERROR")
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


def ray_launcher(**options: Any) -> RayLauncher:
    """``RayLauncher`` for the tests' cluster: no CPU reserved, this checkout importable."""
    options.setdefault("num_cpus", 0)
    options.setdefault("runtime_env", {"env_vars": {"PYTHONPATH": ROOT}})
    return RayLauncher(**options)
