"""Observe: what people and scripts watching a repository see — the state snapshot, the
Prometheus metrics, the dashboard and its HTTP API (``chump serve``), the HTML report. Reads
the store only (through read-only connections); may import every stage before it.
"""
