// The fleet overview: where every server stands.
local lib = import '../lib.libsonnet';
local g = import 'lib.libsonnet';

{
  grafanaDashboards+:: {
    local c = $._config,
    local sel = 'account=~"$account", region=~"$region"',
    local s(metric, extra='') = lib.series(c.rackconnectSelector, metric, std.join(', ', std.filter(function(x) x != '', [sel, extra]))),
    local server = lib.server,
    // The tables read the per-server records of the alert group (servers in trouble only),
    // never the whole fleet, and show at most _config.tableRows rows.
    local rec = lib.serverRecords,
    local nameJoin = '* on (%s) group_left (name) %s' % [server, s(rec.info)],
    // The not-ready servers shown: the oldest first, then those without a creation time.
    local shown = 'topk(%d, time() - %s and on (%s) %s or on (%s) %s)'
                  % [c.tableRows, s(rec.created), server, s(rec.notReady), server, s(rec.notReady)],
    local notReady = 'on (%s) %s' % [server, shown],
    local rc = 'account_region_status:rackconnect_automation_status:sum',
    local mo = 'account_region_status:rackconnect_managed_operations_status:sum',
    local bad = [[null, 'green'], [1, 'red']],
    // A status no server has gives no series in the status counts: the stats show 0.

    // History the exporter records. Two exporters polling the same account record the same
    // changes: max by account keeps one of them before summing the accounts.
    local history(metric, extra, window) =
      'max by (account, region, %s) (\n    increase(%s[%s])\n  )' % [extra, s(metric), window],
    local timeTo(automation, outcome, q) =
      'histogram_quantile(%s,\n  sum by (region, le) (\n    max by (account, region, le) (\n      increase(%s[1h])\n    )\n  )\n)'
      % [q, s('rackconnect_automation_duration_seconds_bucket', 'automation="%s", outcome="%s"' % [automation, outcome])],
    local timeToPanel(title, what, automation, outcome, grid) =
      g.timeseries(
        title,
        'Median and 90th percentile of the time from creation to %s, per region, of the servers that reached it in the hour before each point (the exporter saw the change; servers already done when it started are not counted).' % what,
        grid,
        [
          g.target(timeTo(automation, outcome, '0.5'), 'p50 {{region}}', 'A'),
          g.target(timeTo(automation, outcome, '0.9'), 'p90 {{region}}', 'B'),
        ],
        unit='s',
      ),

    // RackConnect v3.0: the counts per region and state are recorded; the failures come from
    // the alert group's records (failed resources only). The detail family is read whole: the
    // exporter writes it only where the API gives a status_detail, which is rare.
    local v3ByState(title, what, metric, grid) =
      g.timeseries(title, 'RackConnect v3.0 %s per region and state (ADDING, ACTIVE, REMOVING, ADD_FAILED, REMOVE_FAILED, UNKNOWN).' % what,
                   grid, [g.target('sum by (region, status) (account_region_status:%s:sum{%s})' % [metric, sel], '{{region}} {{status}}')]),
    local failed = 'status=~"ADD_FAILED|REMOVE_FAILED"',
    local detail(resource) = s('rackconnect_v3_status_detail_info', 'resource="%s"' % resource),
    local v3Failures =
      local ip = 'label_replace(%s, "resource", "public IP", "", "")' % s(rec.v3PublicIP, failed);
      local node = 'label_replace(%s, "resource", "pool membership", "", "")' % s(rec.v3PoolNode, failed);
      local ipKey = '%s, public_ip_id' % server;
      'topk(%d, (\n' % c.tableRows
      + '      %s\n      * on (%s) group_left (detail)\n' % [ip, ipKey]
      + '        label_replace(max by (%s, resource_id, detail) (%s), "public_ip_id", "$1", "resource_id", "(.*)")\n' % [server, detail('public_ip')]
      + '    or on (%s)\n      %s\n' % [ipKey, ip]
      + '    or\n      %s\n      * on (%s) group_left (detail)\n' % [node, server]
      + '        topk by (%s) (1, %s)\n' % [server, detail('pool_node')]
      + '    or on (%s, pool_id)\n      %s\n' % [server, node]
      + '  )\n  %s\n)' % nameJoin,

    'rackconnect-fleet.json': g.dashboard(
      c.dashboardUIDs.fleet,
      'RackConnect fleet',
      'RackConnect v2.0 and Managed Operations automation status of every cloud server.',
      c.dashboardTags,
      [
        g.row('Fleet', 0),
        g.stat('Servers', 'Servers the exporter sees.', [0, 1, 4, 4],
               'sum(account_region:rackconnect_server_info:count{%s})' % sel, [[null, 'blue']]),
        g.stat('Ready',
               'Servers whose RackConnect and Managed Operations automation (where the account has them) are done.',
               [4, 1, 4, 4], 'sum(account_region:rackconnect_server_ready:sum{%s})' % sel, [[null, 'green']]),
        g.stat('Not ready', 'Servers still being automated, or whose automation failed.', [8, 1, 4, 4],
               'sum(account_region:rackconnect_server_not_ready:sum{%s})' % sel, [[null, 'green'], [1, 'yellow']]),
        g.stat('RackConnect FAILED', 'Servers whose RackConnect automation status is FAILED.', [12, 1, 4, 4],
               'sum(%s{%s, status="FAILED"}) or vector(0)' % [rc, sel], bad),
        g.stat('RackConnect UNPROCESSABLE',
               'Servers RackConnect cannot process, usually built in a region that does not match the RackConnect configuration.',
               [16, 1, 4, 4], 'sum(%s{%s, status="UNPROCESSABLE"}) or vector(0)' % [rc, sel], [[null, 'green'], [1, 'orange']]),
        g.stat('Managed Operations errors',
               'Servers whose Managed Operations post-build automation reports Build Error or Authentication Error.',
               [20, 1, 4, 4], 'sum(%s{%s, status=~"Build Error|Authentication Error"}) or vector(0)' % [mo, sel], bad),
        g.timeseries('RackConnect automation status', 'Servers by rackconnect_automation_status metadata value.',
                     [0, 5, 12, 8], [g.target('sum by (status) (%s{%s})' % [rc, sel], '{{status}}')],
                     stacked=true, colors=c.rackconnectStatusColors),
        g.timeseries('Managed Operations status',
                     'Servers by rax_service_level_automation metadata value (accounts with the Managed Operations service level).',
                     [12, 5, 12, 8], [g.target('sum by (status) (%s{%s})' % [mo, sel], '{{status}}')],
                     stacked=true, colors=c.managedStatusColors),
        g.timeseries('Servers by account, region and RackConnect status', 'One line per account, region and status.',
                     [0, 13, 12, 8],
                     [g.target('sum by (account, region, status) (%s{%s})' % [rc, sel], '{{account}} {{region}} {{status}}')]),
        g.timeseries(
          'Automation transitions',
          'Automation state changes the exporter saw in each interval, by automation and from/to state (none: the metadata key was absent).',
          [12, 13, 12, 8],
          [
            g.target(
              'sum by (automation, from, to) (\n  %s\n)'
              % history('rackconnect_automation_transitions_total', 'automation, from, to', '$__rate_interval'),
              '{{automation}} {{from}} → {{to}}',
            ),
          ],
          bars=true,
        ),
        g.row('Servers that need attention', 21),
        g.table(
          'Servers not ready',
          'Servers that are not ready (the %d created longest ago), with their automation states and their age since they were created. An empty RackConnect cell means DEPLOYED (or no RackConnect key), an empty Managed Operations cell Complete (or no key).' % c.tableRows,
          [0, 22, 24, 10],
          [
            g.target('max by (%s, name) (\n  %s\n  and %s\n)' % [server, s(rec.info), notReady], ref='A', table=true),
            g.target('max by (%s, rackconnect_status) (\n  label_replace(%s, "rackconnect_status", "$1", "status", "(.*)")\n  and %s\n)'
                     % [server, s(rec.automation), notReady], ref='B', table=true),
            g.target('max by (%s, managed_status) (\n  label_replace(%s, "managed_status", "$1", "status", "(.*)")\n  and %s\n)'
                     % [server, s(rec.managed), notReady], ref='C', table=true),
            g.target('max by (%s) (\n  time() - %s\n  and %s\n)'
                     % [server, s(rec.created), notReady], ref='D', table=true),
          ],
          [
            ['name', 'Name'],
            ['account', 'Account'],
            ['region', 'Region'],
            ['server_id', 'Server ID'],
            ['rackconnect_status', 'RackConnect'],
            ['managed_status', 'Managed Operations'],
            ['Value #D', 'Age'],
          ],
          units={ 'Value #D': 'dtdurations' },
          sortBy='Age',
        ),
        g.table(
          'Unprocessable servers',
          'Servers RackConnect reports UNPROCESSABLE, with the reason from their metadata (%d at most).' % c.tableRows,
          [0, 32, 16, 7],
          [g.target('topk(%d, max by (%s, name, reason) (\n  %s\n  %s\n))' % [c.tableRows, server, s('rackconnect_automation_unprocessable_info'), nameJoin], table=true)],
          [['name', 'Name'], ['account', 'Account'], ['region', 'Region'], ['server_id', 'Server ID'], ['reason', 'Reason']],
        ),
        g.panel(
          'bargauge',
          'RackConnect automation features',
          'Servers with each RackConnect automation feature ENABLED in their metadata.',
          [16, 32, 8, 7],
          [g.target('sum by (feature) (account_region_feature:rackconnect_automation_feature_enabled:sum{%s})' % sel, '{{feature}}')],
          options={
            orientation: 'horizontal',
            displayMode: 'basic',
            reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
            showUnfilled: true,
          },
          thresholds=[[null, 'blue']],
        ),
        g.timeseries('Not ready by account and region', 'Servers not ready, per account and region.',
                     [0, 39, 24, 8],
                     [g.target('account_region:rackconnect_server_not_ready:sum{%s}' % sel, '{{account}} {{region}}')]),
        g.row('Automation history', 47),
        timeToPanel('Time to DEPLOYED', 'RackConnect DEPLOYED', 'rackconnect', 'DEPLOYED', [0, 48, 12, 8]),
        timeToPanel('Time to Complete', 'Managed Operations Complete', 'managed', 'Complete', [12, 48, 12, 8]),
        g.row('RackConnect v3.0', 56),
        v3ByState('RackConnect v3.0 public IPs by state', 'public IPs', 'rackconnect_v3_public_ip_status', [0, 57, 12, 8]),
        v3ByState('RackConnect v3.0 pool memberships by state', 'load balancer pool memberships',
                  'rackconnect_v3_pool_node_status', [12, 57, 12, 8]),
        g.table(
          'RackConnect v3.0 failures',
          'Public IPs and load balancer pool memberships that are ADD_FAILED or REMOVE_FAILED (%d at most), with the status_detail RackConnect gives (for a pool membership, one of the server\'s pool membership details).' % c.tableRows,
          [0, 65, 24, 8],
          [g.target(v3Failures, table=true)],
          [
            ['name', 'Name'],
            ['account', 'Account'],
            ['region', 'Region'],
            ['server_id', 'Server ID'],
            ['resource', 'Resource'],
            ['public_ip_id', 'Public IP'],
            ['pool_id', 'Pool'],
            ['status', 'Status'],
            ['detail', 'Detail'],
          ],
        ),
      ],
      [
        g.variable('account', 'Account', 'label_values(%s, account)' % lib.series(c.rackconnectSelector, 'rackconnect_up')),
        g.variable('region', 'Region', 'label_values(%s, region)' % lib.series(c.rackconnectSelector, 'rackconnect_up', 'account=~"$account", region!=""')),
      ],
    ),
  },
}
