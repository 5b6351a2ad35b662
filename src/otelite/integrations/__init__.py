"""Ready-made artefacts for the observability stacks otelite's data goes to.

``otelite.integrations.grafana``: Grafana dashboards, Prometheus alert rules (with
their promtool tests), an OpenTelemetry Collector configuration and a docker compose
stack, shipped in the wheel and written out by ``otelite dashboards export DIR``.
"""
