(import 'fleet.libsonnet') +
(import 'health.libsonnet') +
(import 'server.libsonnet')
