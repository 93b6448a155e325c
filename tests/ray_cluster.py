"""The local Ray cluster of the ``ray`` spawner's tests: the one in ``benchmarks/ray_cluster.py``
(benchmarks use it too and may not import the test package; tests may import benchmarks)."""

from benchmarks.ray_cluster import Cluster, Node, available, descendants, free_port

__all__ = ["Cluster", "Node", "available", "descendants", "free_port"]
