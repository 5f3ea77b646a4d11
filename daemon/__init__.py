"""dslfailover: the daemon. The pipeline of DESIGN §2, one module per stage:

    config ─▶ app.Daemon (the supervisor: TaskGroup, event queue, step loop, shutdown)
                │
    probes/ (icmp, smtp) ─▶ probe_loop ─▶ monitor (Monitor, MailPathMonitor: verdicts)
                │                                    │ events
                ▼                                    ▼
    operators (commands in, status out) ──────▶ machine (pure: RULES, ALLOWED; types in
                                                 machine_types) ─▶ Decision
                                                     │ actions            │ transitions
                                                     ▼                    ▼
                        actions.ActionRunner ─▶ executor ─▶ router_drivers, postfix_sync
                          (intents in store)     (liveproof)        audit ─▶ publish.fanout
                                                                    store  (mqtt, metrics;
                                                                            journal = logs)
Around it: cli/ (the command line), control/ (the operator's socket: protocol, server,
client, MQTT command parsing), publish/ (mqtt, ha_discovery, metrics, journal, logs,
sdnotify, fanout), lab/ (the simulated site, the demo, `dslfailover lab`), wiring (library
settings from the config).
"""

__version__ = "0.1.0"
