"""The simulated site and the real peers for tests, the demo and the lab.

Everything here starts real programs on loopback or inside network namespaces that it
created itself, and cleans up after itself.

    the site      site (Lab: up, down, status), topology (the plan as data), netns (ip,
                  nft), statefile (what it made), spawn (its programs), controls (cut,
                  loss, WAN, tunnel, mail in), observe (what works), rekey (the tunnel),
                  labconfig (the daemon config it writes), services (its servers)
    the peers     launcher (what they share), mosquitto, sshd, postfix, sink
    using it      runner (the daemon in a lab), demo, cli (`dslfailover lab ...`),
                  poll (waiting under a deadline)
"""
