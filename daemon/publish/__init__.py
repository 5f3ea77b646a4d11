"""Publishers: MQTT and Home Assistant discovery, metrics, journal and logs, sd_notify."""
