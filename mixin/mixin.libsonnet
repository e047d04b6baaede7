// The RackConnect monitoring mixin: {_config, prometheusAlerts, prometheusRules, grafanaDashboards}.
(import 'config.libsonnet') +
(import 'alerts/alerts.libsonnet') +
(import 'rules/rules.libsonnet') +
(import 'dashboards/dashboards.libsonnet')
