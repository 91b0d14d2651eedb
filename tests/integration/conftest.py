"""One Ray instance for the whole integration suite (starting Ray takes seconds).

It is a `ray.cluster_utils.Cluster` head node, so that a test can add a
second node and take it away again; its health checks are fast, so a lost
node is noticed in about two seconds instead of the default fifteen. Every
test's backend joins it (Ray is already initialised) and kills its own
actors on close, so the tests do not see each other's actors.
"""

from __future__ import annotations

import logging
import os

import pytest

# Fast failure detection for the node-loss test; only for this test cluster.
FAST_HEALTH_CHECKS = {
    "health_check_initial_delay_ms": 0,
    "health_check_period_ms": 500,
    "health_check_timeout_ms": 500,
    "health_check_failure_threshold": 3,
}


@pytest.fixture(scope="session")
def ray_cluster():
    """The session's Ray cluster (4 logical CPUs on the head), connected."""
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    cluster = Cluster(initialize_head=True, connect=False, head_node_args={
        "num_cpus": 4, "include_dashboard": False, "_system_config": FAST_HEALTH_CHECKS})
    ray.init(address=cluster.address, logging_level=logging.ERROR, log_to_driver=False)
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
