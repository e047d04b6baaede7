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
}
