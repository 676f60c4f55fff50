"""Threshold-signing node: crypto math, sans-I/O protocol sessions, and the node service."""
