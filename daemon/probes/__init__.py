"""Probes: thin wrappers around the network that return small frozen results.

Probes know nothing of failover states; the monitor interprets their results.
"""
