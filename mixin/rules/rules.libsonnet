// Fleet counts per account and region, read by the fleet dashboard. Each count is taken per
// replica (the exporter that polls an account sees all of its servers) and the replicas then
// collapse with max, so two exporters polling the same account (an HA pair) give the same
// numbers as one, without grouping the whole fleet by server each evaluation.
local lib = import '../lib.libsonnet';

{
  prometheusRules+:: {
    local c = $._config,
    local s(metric, extra='') = lib.series(c.rackconnectSelector, metric, extra),
    local oneReplica(agg, metric, by) =
      'max by (%s) (%s by (%s) (%s))'
      % [by, agg, std.join(', ', [by] + c.replicaLabels), s(metric)],

    groups+: [
      {
        name: 'rackconnect.rules',
        rules: [
          {
            record: 'account_region:rackconnect_server_info:count',
            expr: oneReplica('count', 'rackconnect_server_info', 'account, region'),
          },
          {
            record: 'account_region:rackconnect_server_ready:sum',
            expr: oneReplica('sum', 'rackconnect_server_ready', 'account, region'),
          },
          // Every server has one rackconnect_server_ready series: the two counts above
          // give this one without reading the fleet a third time.
          {
            record: 'account_region:rackconnect_server_not_ready:sum',
            expr: 'account_region:rackconnect_server_info:count - account_region:rackconnect_server_ready:sum',
          },
          {
            record: 'account_region_status:rackconnect_automation_status:sum',
            expr: oneReplica('sum', 'rackconnect_automation_status', 'account, region, status'),
          },
          {
            record: 'account_region_status:rackconnect_managed_operations_status:sum',
            expr: oneReplica('sum', 'rackconnect_managed_operations_status', 'account, region, status'),
          },
          {
            record: 'account_region_feature:rackconnect_automation_feature_enabled:sum',
            expr: oneReplica('sum', 'rackconnect_automation_feature_enabled', 'account, region, feature'),
          },
        ],
      },
    ],
  },
}
