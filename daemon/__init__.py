"""dslfailover: the daemon (config, probes, monitor, state machine, executor, publishers, CLI)."""

__version__ = "0.1.0"
