// Settings of the RackConnect mixin. Override any of them when importing:
//   (import 'rackconnect-mixin/mixin.libsonnet') + { _config+:: { rackconnectSelector: 'job="rc"' } }
local lib = import 'lib.libsonnet';

{
  _config+:: {
    local config = self,
    // Label matchers that select the exporter's series (no braces). Every rule and every
    // dashboard query uses it: set it to the job (or namespace, ...) your scrape config gives.
    rackconnectSelector: 'job="rackconnect-exporter"',
    // Labels that tell apart two exporters polling the same accounts (an HA pair): the
    // per-server rules and alerts aggregate them away, so the pair raises each alert once.
    // Add any label your scrape config gives each replica.
    replicaLabels: ['instance', 'pod'],

    // Link of each alert's runbook: %s becomes the alert name in lower case (the anchor of
    // its section in docs/runbook.md).
    runbookURLPattern: 'https://github.com/example/rackconnect-exporter/blob/main/docs/runbook.md#%s',

    // Base URL of the Grafana that holds the dashboards (the alerts' dashboard_url).
    grafanaURL: 'http://localhost:3000',

    // Dashboard uids; alerts link to them, so keep them stable.
    dashboardUIDs: {
      fleet: 'rackconnect-fleet',
      health: 'rackconnect-exporter-health',
      server: 'rackconnect-server',
    },
    // Most rows a dashboard table lists (the oldest first where rows have an age).
    tableRows: 500,
    // Tags of the dashboards; the first one links them to each other.
    dashboardTags: ['rackconnect', 'rackspace'],
    // Fixed colours of the status series in the dashboards.
    rackconnectStatusColors: {
      DEPLOYED: 'green',
      DEPLOYING: 'blue',
      FAILED: 'red',
      UNPROCESSABLE: 'orange',
      UNKNOWN: 'purple',
    },
    managedStatusColors: {
      Complete: 'green',
      Pending: 'yellow',
      'In Progress': 'blue',
      'Build Error': 'red',
      'Authentication Error': 'dark-red',
      UNKNOWN: 'purple',
    },

    // Thresholds, in seconds.
    automationStuckSeconds: 1800,  // DEPLOYING this long after creation: RackConnectAutomationStuck
    managedOperationsStuckSeconds: 3600,  // Pending/In Progress this long: RackConnectManagedOperationsStuck
    serverNotReadySeconds: 3600,  // not ready this long after creation: RackConnectServerNotReady
    // ADDING or REMOVING this long (RackConnect v3.0): RackConnectV3Stuck.
    rackconnectV3StuckSeconds: 1800,
    dataStaleSeconds: 300,  // no successful poll for this long: RackConnectDataStale
    // p90 time from creation to DEPLOYED (or Complete) over the last day above this:
    // RackConnectAutomationSlow.
    automationSlowSeconds: 3600,

    // How long a condition must hold before the alert fires (`for`).
    alertFor: {
      RackConnectAutomationFailed: '5m',
      RackConnectAutomationUnprocessable: '5m',
      RackConnectAutomationStuck: '5m',
      RackConnectManagedOperationsFailed: '5m',
      RackConnectManagedOperationsStuck: '5m',
      RackConnectStatusUnknown: '30m',
      // Also how long a server without a creation time (first generation) must stay not ready.
      RackConnectServerNotReady: '1h',
      RackConnectServerError: '5m',
      RackConnectExporterDown: '5m',
      RackConnectPollFailing: '10m',
      RackConnectDataStale: '5m',
      RackConnectConfigReloadFailed: '5m',
      RackConnectAutomationSlow: '30m',
      RackConnectV3PublicIPFailed: '5m',
      RackConnectV3PoolNodeFailed: '5m',
      // v3.0 gives no time a state began: the `for` is the threshold.
      RackConnectV3Stuck: lib.duration(config.rackconnectV3StuckSeconds),
      RackConnectV3PollFailing: '10m',
    },

    // How long an alert on the exporter's per-server or per-region series keeps firing after
    // its condition is gone: an exporter restart drops those series until its first poll
    // ends, which would otherwise resolve every such alert and fire it again `for` later.
    // Also the delay of a genuine resolution. '' leaves keep_firing_for out.
    keepFiringFor: '10m',

    // Severity of each alert: critical (act now), warning (act today) or info.
    severities: {
      RackConnectAutomationFailed: 'critical',
      RackConnectAutomationUnprocessable: 'warning',
      RackConnectAutomationStuck: 'warning',
      RackConnectManagedOperationsFailed: 'critical',
      RackConnectManagedOperationsStuck: 'warning',
      RackConnectStatusUnknown: 'info',
      RackConnectServerNotReady: 'warning',
      RackConnectServerError: 'critical',
      RackConnectExporterDown: 'critical',
      RackConnectPollFailing: 'warning',
      RackConnectDataStale: 'warning',
      RackConnectConfigReloadFailed: 'warning',
      RackConnectAutomationSlow: 'info',
      RackConnectV3PublicIPFailed: 'critical',
      RackConnectV3PoolNodeFailed: 'critical',
      RackConnectV3Stuck: 'warning',
      RackConnectV3PollFailing: 'warning',
    },
  },
}
