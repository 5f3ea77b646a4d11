"""Notices through real Apprise to HTTP endpoints on loopback."""
