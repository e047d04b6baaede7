"""HTTP: the exporter's server, its TLS and basic auth, and the landing page."""
