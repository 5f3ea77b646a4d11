"""Real peers for tests, the demo and the lab: mosquitto, sshd, Postfix, SMTP sink, namespaces.

Everything here starts real programs on loopback or inside network namespaces that it
created itself, and cleans up after itself.
"""
