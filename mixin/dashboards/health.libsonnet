// The exporter's own health: scrapes, polls, upstream API calls. Every query carries
// _config.rackconnectSelector, so the panels count the exporter's targets only.
local lib = import '../lib.libsonnet';
local g = import 'lib.libsonnet';

{
  grafanaDashboards+:: {
    local c = $._config,
    local sel = 'account=~"$account", region=~"$region"',
    local job(metric) = lib.series(c.rackconnectSelector, metric),
    local s(metric) = lib.series(c.rackconnectSelector, metric, sel),
    // Each instance's shard and shard count; an instance without them is not sharded.
    local shardOrdinal = 'max by (instance, shard_ordinal) (last_over_time(%s[1d])) or on (instance) label_replace(max by (instance) (%s), "shard_ordinal", "0", "", "")'
                         % [job('rackconnect_exporter_shard_ordinal'), job('up')],
    local shardTotal = 'max by (instance) (last_over_time(%s[1d])) or on (instance) (max by (instance) (%s) * 0 + 1)'
                       % [job('rackconnect_exporter_total_shards'), job('up')],

    'rackconnect-exporter-health.json': g.dashboard(
      c.dashboardUIDs.health,
      'RackConnect exporter health',
      'Scrapes, polls and Rackspace API calls of rackconnect-exporter.',
      c.dashboardTags,
      [
        g.row('Exporter', 0),
        g.stat('Targets up', 'Exporter targets Prometheus scrapes successfully.', [0, 1, 6, 4],
               'sum(%s)' % job('up'), [[null, 'red'], [1, 'green']]),
        g.stat('Regions failing', 'Account and region pairs whose last poll failed (rackconnect_up == 0).',
               [6, 1, 6, 4], 'sum(1 - %s)' % s('rackconnect_up'), [[null, 'green'], [1, 'red']]),
        g.stat('Oldest successful poll',
               'Age of the oldest last successful poll; RackConnectDataStale fires above %s.' % lib.duration(c.dataStaleSeconds),
               [12, 1, 6, 4], 'max(time() - %s)' % s('rackconnect_last_successful_poll_timestamp_seconds'),
               [[null, 'green'], [c.dataStaleSeconds * 2 / 5, 'yellow'], [c.dataStaleSeconds, 'red']], unit='s'),
        g.table('Exporter build', 'Version and source revision of each exporter instance.', [18, 1, 6, 4],
                [g.target('max by (instance, version, revision, python_version) (%s)' % job('rackconnect_exporter_build_info'), table=true)],
                [['instance', 'Instance'], ['version', 'Version'], ['revision', 'Revision'], ['python_version', 'Python']]),
        g.timeseries('Target up', 'up of each exporter instance.', [0, 5, 12, 7],
                     [g.target(job('up'), '{{instance}}')]),
        g.table('Accounts', 'Configured accounts and what their token roles grant.', [12, 5, 12, 7],
                [g.target('max by (account, tenant_id, rackconnect, managed) (%s)'
                          % lib.series(c.rackconnectSelector, 'rackconnect_account_info', 'account=~"$account"'), table=true)],
                [['account', 'Account'], ['tenant_id', 'Tenant'], ['rackconnect', 'RackConnect'], ['managed', 'Managed Operations']]),
        g.table('Shards', |||
                  Every exporter instance, its shard (--shard.index, kept for a day after the
                  instance went away) of how many (--shard.total), and whether Prometheus
                  scrapes it. An unsharded instance is shard 0 of 1.
                |||, [0, 12, 16, 6],
                [g.target(shardOrdinal, ref='A', table=true),
                 g.target(shardTotal, ref='B', table=true),
                 g.target('max by (instance) (%s)' % job('up'), ref='C', table=true)],
                [['instance', 'Instance'], ['shard_ordinal', 'Shard'], ['Value #B', 'Of'], ['Value #C', 'Up']]),
        g.stat('Shards missing', 'Shards (--shard.total) that no instance which is up polls; their accounts are not polled.',
               [16, 12, 8, 6],
               'max(%s) - (count(count by (shard_ordinal) ((%s) and on (instance) (%s == 1))) or vector(0))'
               % [shardTotal, shardOrdinal, job('up')],
               [[null, 'green'], [1, 'red']]),
        g.row('Polls', 18),
        g.stateTimeline('Region poll status', 'rackconnect_up per account and region: 1 when the last poll succeeded.',
                        [0, 19, 24, 6], [g.target(s('rackconnect_up'), '{{account}} {{region}}')],
                        [{ type: 'value', options: { '0': { text: 'failing', color: 'red' }, '1': { text: 'ok', color: 'green' } } }],
                        [[null, 'red'], [1, 'green']]),
        g.timeseries('Age of the last successful poll', "Seconds since each region's last successful poll finished.",
                     [0, 25, 12, 8],
                     [g.target('time() - %s' % s('rackconnect_last_successful_poll_timestamp_seconds'), '{{account}} {{region}}')],
                     unit='s', thresholds=[[null, 'green'], [c.dataStaleSeconds, 'red']]),
        g.timeseries('Poll duration', 'How long the last poll of each region took.', [12, 25, 12, 8],
                     [g.target(s('rackconnect_poll_duration_seconds'), '{{account}} {{region}}')], unit='s'),
        g.timeseries('Poll errors by reason', 'Failed polls per second, by account, region and reason: Cloud Servers, and RackConnect v3.0 in v3.0 regions.', [0, 33, 12, 8],
                     [g.target('sum by (account, region, reason) (rate(%s[$__rate_interval]))' % s('rackconnect_poll_errors_total'),
                               '{{account}} {{region}} {{reason}}'),
                      g.target('sum by (account, region, reason) (rate(%s[$__rate_interval]))' % s('rackconnect_v3_poll_errors_total'),
                               '{{account}} {{region}} v3.0 {{reason}}')], unit='reqps'),
        g.timeseries('Rackspace API requests by code', 'Upstream HTTP requests per second, by API and HTTP status code.',
                     [12, 33, 12, 8],
                     [g.target('sum by (api, code) (rate(%s[$__rate_interval]))' % s('rackconnect_api_requests_total'),
                               '{{api}} {{code}}')], unit='reqps'),
      ],
      [
        g.variable('account', 'Account', 'label_values(%s, account)' % job('rackconnect_up')),
        g.variable('region', 'Region', 'label_values(%s, region)' % lib.series(c.rackconnectSelector, 'rackconnect_up', 'account=~"$account"')),
      ],
    ),
  },
}
