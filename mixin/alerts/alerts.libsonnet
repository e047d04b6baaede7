// The alerting rules. They cost Prometheus in proportion to the servers in trouble, not to
// the fleet: the group first records, once per evaluation, the few per-server series that
// matter (status series with value 1 other than the settled one, RackConnect v3.0 public IPs
// and pool memberships not ACTIVE (v3.libsonnet), servers not ready, and the
// name and creation time of those servers only); the alerts then read those small recorded
// series. Rules of one group run in order at the same timestamp, so each alert sees this
// evaluation's records. Each record aggregates the replicas away (_config.replicaLabels),
// so two exporters polling the same account (an HA pair) raise each alert once.
// The RackConnect alerts skip regions of an account where RackConnect is declared not
// expected (rackconnect_region_info{rackconnect="false"}), which changes nothing while the
// exporter does not expose that series.
local lib = import '../lib.libsonnet';

{
  prometheusAlerts+:: {
    local c = $._config,
    local s(metric, extra='') = lib.series(c.rackconnectSelector, metric, extra),
    local server = lib.server,
    local oneReplica(expr) = 'max without (%s) (%s)' % [std.join(', ', c.replicaLabels), expr],

    // The per-server records, read by the alerts below and the fleet dashboard.
    local rec = lib.serverRecords,
    local v3 = (import 'v3.libsonnet')(c, {
      s: s,
      oneReplica: oneReplica,
      perServer: perServer,
      alert: alert,
      theServer: theServer,
      fleet: fleet,
      health: health,
      words: words,
    }),
    local records = v3.records + [
      {
        record: rec.automation,
        expr: oneReplica('%s == 1' % s('rackconnect_automation_status', 'status!="DEPLOYED"')),
      },
      {
        record: rec.managed,
        expr: oneReplica('%s == 1' % s('rackconnect_managed_operations_status', 'status!="Complete"')),
      },
      { record: rec.notReady, expr: oneReplica('%s == 0' % s('rackconnect_server_ready')) },
      {
        record: rec.info,
        expr: oneReplica(
          '\n  %s\n  and on (%s) (\n      %s\n  )\n'
          % [
            s('rackconnect_server_info'),
            server,
            std.join('\n    or\n      ', [
              s(rec.automation),
              s(rec.managed),
              s(rec.notReady),
              '%s == 1' % s('rackconnect_server_status', 'status="ERROR"'),
              s(rec.v3PublicIP),
              s(rec.v3PoolNode),
            ]),
          ]
        ),
      },
      {
        record: rec.created,
        expr: oneReplica('%s and on (%s) %s' % [s('rackconnect_server_created_timestamp_seconds'), server, s(rec.info)]),
      },
    ],

    local nameJoin = '* on (%s) group_left (name)\n  %s' % [server, s(rec.info)],
    // Keeps only the servers of regions where RackConnect is expected.
    local rackconnectRegions(expr) =
      '(\n  %s\n  unless on (account, region)\n    %s\n)'
      % [std.strReplace(expr, '\n', '\n  '), s('rackconnect_region_info', 'rackconnect="false"')],
    // The age of the servers in trouble created more than `seconds` ago.
    local createdAgo(seconds) = 'time() - %s > %d' % [s(rec.created), seconds],
    local perServer(expr) = expr + '\n' + nameJoin + '\n',

    local place = 'in account {{ $labels.account }}, region {{ $labels.region }}',
    local theServer = 'server {{ $labels.name }} ({{ $labels.server_id }}) ' + place,
    local dashboard(uid, vars) =
      '%s/d/%s%s' % [
        c.grafanaURL,
        uid,
        if vars == [] then '' else '?' + std.join('&', [
          'var-%s={{ $labels.%s | urlquery }}' % [v, v]
          for v in vars
        ]),
      ],
    local fleet = dashboard(c.dashboardUIDs.fleet, ['account', 'region']),
    local perServerDashboard = dashboard(c.dashboardUIDs.server, ['account', 'region', 'server_id']),
    local health(vars) = dashboard(c.dashboardUIDs.health, vars),
    local words(d) =
      local n = std.parseInt(std.substr(d, 0, std.length(d) - 1));
      local unit = { s: 'second', m: 'minute', h: 'hour' }[std.substr(d, std.length(d) - 1, 1)];
      '%d %s%s' % [n, unit, if n == 1 then '' else 's'],

    local alert(name, expr, summary, description, dashboardURL, keepFiring=true) = {
      alert: name,
      expr: expr,
      'for': c.alertFor[name],
      [if keepFiring && c.keepFiringFor != '' then 'keep_firing_for']: c.keepFiringFor,
      labels: { severity: c.severities[name] },
      annotations: {
        summary: summary,
        description: description,
        runbook_url: c.runbookURLPattern % std.asciiLower(name),
        dashboard_url: dashboardURL,
      },
    },

    groups+: [
      {
        name: 'rackconnect.alerts',
        rules: records + [
          alert(
            'RackConnectAutomationFailed',
            perServer(rackconnectRegions(
              s(rec.automation, 'status="FAILED"')
            )),
            'RackConnect automation failed on a cloud server.',
            'RackConnect automation on %s, reports FAILED: ' % theServer
            + 'the server is not connected to the dedicated network.',
            fleet,
          ),
          alert(
            'RackConnectAutomationUnprocessable',
            perServer(rackconnectRegions(
              s(rec.automation, 'status="UNPROCESSABLE"')
            )),
            'RackConnect cannot process a cloud server.',
            'RackConnect reports UNPROCESSABLE for %s (reason: ' % theServer
            + '{{ with printf `%s` $labels.account $labels.region $labels.server_id | query }}'
              % s('rackconnect_automation_unprocessable_info', 'account=%q, region=%q, server_id=%q')
            + '{{ . | first | label "reason" }}{{ else }}none given{{ end }}). '
            + 'This usually means the server was built in a region that does not match the '
            + 'RackConnect configuration.',
            fleet,
          ),
          // The age comes from the server's creation time, so the alert fires on time even
          // right after an exporter or Prometheus restart. First-generation servers have no
          // creation time: RackConnectServerNotReady covers them.
          alert(
            'RackConnectAutomationStuck',
            perServer(rackconnectRegions(
              '%s\n* on (%s) group_left ()\n  (%s)'
              % [s(rec.automation, 'status="DEPLOYING"'), server, createdAgo(c.automationStuckSeconds)]
            )),
            'RackConnect automation has been deploying a cloud server for too long.',
            'Server {{ $labels.name }} ({{ $labels.server_id }}) %s, is still DEPLOYING ' % place
            + '{{ $value | humanizeDuration }} after it was created (threshold %s).'
              % lib.duration(c.automationStuckSeconds),
            fleet,
          ),
          alert(
            'RackConnectManagedOperationsFailed',
            perServer(
              s(rec.managed, 'status=~"Build Error|Authentication Error"')
            ),
            'Managed Operations post-build automation failed on a cloud server.',
            'Managed Operations post-build automation on %s, reports {{ $labels.status }}.'
            % theServer,
            fleet,
          ),
          // Managed Operations runs after RackConnect automation: while RackConnect is not
          // DEPLOYED the server waits in Pending, and the RackConnect alerts speak for it.
          alert(
            'RackConnectManagedOperationsStuck',
            perServer(
              '(\n  %s\n  * on (%s) group_left ()\n    (%s)\n  unless on (%s)\n    %s\n)'
              % [
                s(rec.managed, 'status=~"Pending|In Progress"'),
                server,
                createdAgo(c.managedOperationsStuckSeconds),
                server,
                s(rec.automation),
              ]
            ),
            'Managed Operations post-build automation has been running for too long.',
            'Managed Operations post-build automation on %s, is still {{ $labels.status }} '
            % theServer
            + '{{ $value | humanizeDuration }} after the server was created (threshold %s).'
              % lib.duration(c.managedOperationsStuckSeconds),
            fleet,
          ),
          alert(
            'RackConnectStatusUnknown',
            perServer(
              '(\n    %s\n  or\n    %s\n)'
              % [
                std.strReplace(rackconnectRegions(
                  'label_replace(%s, "automation", "RackConnect", "", "")'
                  % s(rec.automation, 'status="UNKNOWN"')
                ), '\n', '\n    '),
                'label_replace(%s, "automation", "Managed Operations", "", "")'
                % s(rec.managed, 'status="UNKNOWN"'),
              ]
            ),
            'A cloud server carries an automation status the exporter does not know.',
            'The {{ $labels.automation }} status in the metadata of %s, ' % theServer
            + 'is not one of the documented values.',
            fleet,
          ),
          // The catch-all: a server still not ready long after it was created, for none of
          // the reasons a more specific alert reports (Nova BUILD for days, a Managed
          // Operations key that never appears, ...). A server without a creation time (first
          // generation) counts from when Prometheus first sees it not ready (the `for`).
          alert(
            'RackConnectServerNotReady',
            perServer(
              '(\n  %s\n  unless on (%s)\n    (time() - %s <= %d)\n  unless on (%s) (\n%s\n  )\n)'
              % [
                s(rec.notReady),
                server,
                s(rec.created),
                c.serverNotReadySeconds,
                server,
                std.join('\n    or\n', [
                  '      ' + e
                  for e in [
                    s(rec.automation, 'status=~"FAILED|UNPROCESSABLE|UNKNOWN"'),
                    s(rec.managed, 'status=~"Build Error|Authentication Error|UNKNOWN"'),
                    '%s == 1' % s('rackconnect_server_status', 'status="ERROR"'),
                    '%s and on (%s) %s' % [s(rec.automation, 'status="DEPLOYING"'), server, s(rec.created)],
                    '%s and on (%s) %s'
                    % [s(rec.managed, 'status=~"Pending|In Progress"'), server, s(rec.created)],
                  ] + v3.covered
                ]),
              ]
            ),
            'A cloud server has not become ready long after it was created.',
            'Server {{ $labels.name }} ({{ $labels.server_id }}) %s, is still not ready ' % place
            + 'more than %s after it was created and no more specific alert explains why: '
              % lib.duration(c.serverNotReadySeconds)
            + 'check its Nova status and whether the RackConnect and Managed Operations metadata '
            + 'keys its account needs are there.',
            perServerDashboard,
          ),
          alert(
            'RackConnectServerError',
            perServer('(\n  %s\n)' % oneReplica('%s == 1' % s('rackconnect_server_status', 'status="ERROR"'))),
            'A cloud server is in Nova status ERROR.',
            'Nova reports status ERROR for %s: the server did not build or broke, ' % theServer
            + 'and no automation will run on it.',
            perServerDashboard,
          ),
          alert(
            'RackConnectExporterDown',
            '%s == 0\nor\nabsent(%s)\n' % [s('up'), s('up')],
            'Prometheus cannot scrape rackconnect-exporter.',
            '{{ with $labels.instance }}Target {{ . }} of job {{ $labels.job }} is down'
            + '{{ else }}Prometheus has no target for job {{ $labels.job }}{{ end }}: '
            + 'no RackConnect or Managed Operations alert can fire while it lasts.',
            health([]),
            keepFiring=false,
          ),
          alert(
            'RackConnectPollFailing',
            '%s == 0' % s('rackconnect_up'),
            'The exporter cannot poll a Rackspace account.',
            '{{ $labels.instance }} has failed to poll account {{ $labels.account }}, '
            + '{{ with $labels.region }}region {{ . }}{{ else }}before any region was known '
            + '(authentication){{ end }}, for %s; ' % words(c.alertFor.RackConnectPollFailing)
            + 'its servers keep their last known state.',
            health(['account', 'region']),
          ),
          alert(
            'RackConnectDataStale',
            'time() - %s > %d'
            % [s('rackconnect_last_successful_poll_timestamp_seconds'), c.dataStaleSeconds],
            "The exporter's data for a Rackspace region is old.",
            'The last successful poll of account {{ $labels.account }}, region {{ $labels.region }}, '
            + 'by {{ $labels.instance }} finished {{ $value | humanizeDuration }} ago (threshold %s).'
              % lib.duration(c.dataStaleSeconds),
            health(['account', 'region']),
          ),
          alert(
            'RackConnectConfigReloadFailed',
            '%s == 0' % s('rackconnect_config_last_reload_successful'),
            'The exporter could not load its changed configuration file.',
            '{{ $labels.instance }} of job {{ $labels.job }} failed to load its configuration '
            + 'file on the last reload (SIGHUP) and keeps polling with the previous one.',
            health([]),
            keepFiring=false,
          ),
          // From the history the exporter records: the time from creation to the success
          // state of the servers that reached it in the last day. Two exporters polling the
          // same account record the same changes, so one of them (max) counts.
          alert(
            'RackConnectAutomationSlow',
            'histogram_quantile(0.9,\n  max by (account, region, automation, le) (\n'
            + '    increase(%s[1d])\n  )\n) > %d'
            % [
              s('rackconnect_automation_duration_seconds_bucket', 'outcome=~"DEPLOYED|Complete"'),
              c.automationSlowSeconds,
            ],
            'Post-build automation takes longer than usual.',
            'In account {{ $labels.account }}, region {{ $labels.region }}, one server in ten '
            + 'took more than {{ $value | humanizeDuration }} from creation to the end of its '
            + '{{ $labels.automation }} automation over the last day (threshold %s).'
            % lib.duration(c.automationSlowSeconds),
            fleet,
          ),
        ] + v3.alerts,
      },
    ],
  },
}
