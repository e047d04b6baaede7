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
        g.table('Exporter build', 'Version of each exporter instance.', [18, 1, 6, 4],
                [g.target('max by (instance, version, python_version) (%s)' % job('rackconnect_exporter_build_info'), table=true)],
                [['instance', 'Instance'], ['version', 'Version'], ['python_version', 'Python']]),
        g.timeseries('Target up', 'up of each exporter instance.', [0, 5, 12, 7],
                     [g.target(job('up'), '{{instance}}')]),
        g.table('Accounts', 'Configured accounts and what their token roles grant.', [12, 5, 12, 7],
                [g.target('max by (account, tenant_id, rackconnect, managed) (%s)'
                          % lib.series(c.rackconnectSelector, 'rackconnect_account_info', 'account=~"$account"'), table=true)],
                [['account', 'Account'], ['tenant_id', 'Tenant'], ['rackconnect', 'RackConnect'], ['managed', 'Managed Operations']]),
        g.row('Polls', 12),
        g.stateTimeline('Region poll status', 'rackconnect_up per account and region: 1 when the last poll succeeded.',
                        [0, 13, 24, 6], [g.target(s('rackconnect_up'), '{{account}} {{region}}')],
                        [{ type: 'value', options: { '0': { text: 'failing', color: 'red' }, '1': { text: 'ok', color: 'green' } } }],
                        [[null, 'red'], [1, 'green']]),
        g.timeseries('Age of the last successful poll', "Seconds since each region's last successful poll finished.",
                     [0, 19, 12, 8],
                     [g.target('time() - %s' % s('rackconnect_last_successful_poll_timestamp_seconds'), '{{account}} {{region}}')],
                     unit='s', thresholds=[[null, 'green'], [c.dataStaleSeconds, 'red']]),
        g.timeseries('Poll duration', 'How long the last poll of each region took.', [12, 19, 12, 8],
                     [g.target(s('rackconnect_poll_duration_seconds'), '{{account}} {{region}}')], unit='s'),
        g.timeseries('Poll errors by reason', 'Failed polls per second, by account, region and reason.', [0, 27, 12, 8],
                     [g.target('sum by (account, region, reason) (rate(%s[$__rate_interval]))' % s('rackconnect_poll_errors_total'),
                               '{{account}} {{region}} {{reason}}')], unit='reqps'),
        g.timeseries('Rackspace API requests by code', 'Upstream HTTP requests per second, by API and HTTP status code.',
                     [12, 27, 12, 8],
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
