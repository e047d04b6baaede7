// Fleet counts per account and region, read by the fleet dashboard. Each count is taken per
// replica (the exporter that polls an account sees all of its servers) and the replicas then
// collapse with max, so two exporters polling the same account (an HA pair) give the same
// numbers as one. The one-hot families are read once per evaluation, by the alert group's
// records of the servers in trouble: here only the settled status is read whole, and the
// other statuses are counted from those records (a status no server has gives no series).
local lib = import '../lib.libsonnet';

{
  prometheusRules+:: {
    local c = $._config,
    local s(metric, extra='') = lib.series(c.rackconnectSelector, metric, extra),
    local rec = lib.serverRecords,
    local oneReplica(agg, metric, by, extra='') =
      'max by (%s) (%s by (%s) (%s))'
      % [by, agg, std.join(', ', [by] + c.replicaLabels), s(metric, extra)],
    local byStatus(metric, settled, record) =
      '%s\nor\n  count by (account, region, status) (%s)\n'
      % [oneReplica('sum', metric, 'account, region, status', 'status="%s"' % settled), s(record)],

    groups+: [
      {
        name: 'rackconnect.rules',
        rules: [
          {
            // Servers per region, counted from rackconnect_server_ready (one series per
            // server, as rackconnect_server_info): the exporter writes those in the order
            // Prometheus sorts them, where the info series sort by name first.
            record: 'account_region:rackconnect_server_info:count',
            expr: oneReplica('count', 'rackconnect_server_ready', 'account, region'),
          },
          {
            record: 'account_region:rackconnect_server_not_ready:sum',
            expr: 'count by (account, region) (%s)\nor\n  0 * account_region:rackconnect_server_info:count\n'
                  % s(rec.notReady),
          },
          {
            record: 'account_region:rackconnect_server_ready:sum',
            expr: 'account_region:rackconnect_server_info:count - account_region:rackconnect_server_not_ready:sum',
          },
          {
            record: 'account_region_status:rackconnect_automation_status:sum',
            expr: byStatus('rackconnect_automation_status', 'DEPLOYED', rec.automation),
          },
          {
            record: 'account_region_status:rackconnect_managed_operations_status:sum',
            expr: byStatus('rackconnect_managed_operations_status', 'Complete', rec.managed),
          },
          {
            record: 'account_region_status:rackconnect_v3_public_ip_status:sum',
            expr: byStatus('rackconnect_v3_public_ip_status', 'ACTIVE', rec.v3PublicIP),
          },
          {
            record: 'account_region_status:rackconnect_v3_pool_node_status:sum',
            expr: byStatus('rackconnect_v3_pool_node_status', 'ACTIVE', rec.v3PoolNode),
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
