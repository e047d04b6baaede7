// Fleet counts per account and region, read by the fleet dashboard. Each one first keeps one
// series per server (max by server), so two exporters polling the same account (an HA pair)
// give the same numbers as one.
local lib = import '../lib.libsonnet';

{
  prometheusRules+:: {
    local c = $._config,
    local s(metric, extra='') = lib.series(c.rackconnectSelector, metric, extra),
    local perServer(metric, by='') =
      'max by (%s) (%s)' % [std.join(', ', std.filter(function(l) l != '', [lib.server, by])), s(metric)],

    groups+: [
      {
        name: 'rackconnect.rules',
        rules: [
          {
            record: 'account_region:rackconnect_server_info:count',
            expr: 'count by (account, region) (%s)' % perServer('rackconnect_server_info'),
          },
          {
            record: 'account_region:rackconnect_server_ready:sum',
            expr: 'sum by (account, region) (%s)' % perServer('rackconnect_server_ready'),
          },
          {
            record: 'account_region:rackconnect_server_not_ready:sum',
            expr: 'sum by (account, region) (1 - %s)' % perServer('rackconnect_server_ready'),
          },
          {
            record: 'account_region_status:rackconnect_automation_status:sum',
            expr: 'sum by (account, region, status) (%s)'
                  % perServer('rackconnect_automation_status', 'status'),
          },
          {
            record: 'account_region_status:rackconnect_managed_operations_status:sum',
            expr: 'sum by (account, region, status) (%s)'
                  % perServer('rackconnect_managed_operations_status', 'status'),
          },
          {
            record: 'account_region_feature:rackconnect_automation_feature_enabled:sum',
            expr: 'sum by (account, region, feature) (%s)'
                  % perServer('rackconnect_automation_feature_enabled', 'feature'),
          },
        ],
      },
    ],
  },
}
