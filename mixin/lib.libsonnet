// Small helpers shared by the alerts, rules and dashboards.
{
  // `metric{selector, extra}`, leaving out whichever part is empty.
  series(selector, metric, extra=''):: (
    local matchers = std.filter(function(m) m != '', [selector, extra]);
    metric + '{' + std.join(', ', matchers) + '}'
  ),

  // 1800 -> '30m', 3600 -> '1h', 90 -> '90s': thresholds as the descriptions quote them.
  duration(seconds)::
    if seconds % 3600 == 0 then '%dh' % (seconds / 3600)
    else if seconds % 60 == 0 then '%dm' % (seconds / 60)
    else '%ds' % seconds,

  // The labels that identify one server.
  server:: 'account, region, server_id',

  // The per-server series the alert group records for the servers in trouble (one series
  // per server whatever the replicas), read by the alerts and the fleet dashboard.
  serverRecords:: {
    automation: 'server_status:rackconnect_automation_status:not_deployed',
    managed: 'server_status:rackconnect_managed_operations_status:not_complete',
    notReady: 'server:rackconnect_server_ready:not_ready',
    info: 'server:rackconnect_server_info:in_trouble',
    created: 'server:rackconnect_server_created_timestamp_seconds:in_trouble',
    // RackConnect v3.0: the public IPs and pool memberships not ACTIVE.
    v3PublicIP: 'server_status:rackconnect_v3_public_ip_status:not_active',
    v3PoolNode: 'server_status:rackconnect_v3_pool_node_status:not_active',
  },
}
