// One server: its statuses over time, features, Managed Operations, Nova status and age.
// Alerts about one server link here with account, region and server_id set.
local lib = import '../lib.libsonnet';
local g = import 'lib.libsonnet';

{
  grafanaDashboards+:: {
    local c = $._config,
    local sel = 'account=~"$account", region=~"$region", server_id=~"$server_id"',
    local s(metric, extra='') = lib.series(c.rackconnectSelector, metric, std.join(', ', std.filter(function(x) x != '', [sel, extra]))),
    local on = [[null, 'transparent'], [1, 'green']],
    local lit = [{ type: 'value', options: { '0': { text: 'no', color: 'transparent' }, '1': { text: 'yes', color: 'green' } } }],
    local statusTimeline(title, description, grid, metric, colors) =
      g.stateTimeline(title, description, grid,
                      [g.target('max by (status) (%s == 1)' % s(metric), '{{status}}')],
                      [], [[null, 'blue']]) + {
        fieldConfig+: { overrides: g.colorOverrides(colors) },
      },

    'rackconnect-server.json': g.dashboard(
      c.dashboardUIDs.server,
      'RackConnect server',
      'One cloud server: Nova status, RackConnect and Managed Operations automation over time, features and age.',
      c.dashboardTags,
      [
        g.row('Server', 0),
        g.table('Server', 'Name, generation and where the server lives.', [0, 1, 12, 4],
                [g.target('max by (%s, name, generation) (%s)' % [lib.server, s('rackconnect_server_info')], table=true)],
                [['name', 'Name'], ['account', 'Account'], ['region', 'Region'], ['server_id', 'Server ID'], ['generation', 'Generation']]),
        g.stat('Ready', 'rackconnect_server_ready: Nova ACTIVE and the automation the account needs is done.',
               [12, 1, 4, 4], 'min(%s)' % s('rackconnect_server_ready'), [[null, 'yellow'], [1, 'green']],
               mappings=[{ type: 'value', options: { '0': { text: 'not ready' }, '1': { text: 'ready' } } }]),
        g.stat('Age', 'Time since the server was created (next-generation servers only).', [16, 1, 4, 4],
               'max(time() - %s)' % s('rackconnect_server_created_timestamp_seconds'), [[null, 'blue']], unit='dtdurations'),
        g.stat('Nova status', 'The Cloud Servers status (ACTIVE, BUILD, ERROR, ...).', [20, 1, 4, 4],
               'count by (status) (%s == 1)' % s('rackconnect_server_status'), [[null, 'blue']]) + {
          options+: { textMode: 'name' },
          targets: [g.target('count by (status) (%s == 1)' % s('rackconnect_server_status'), '{{status}}')],
        },
        g.row('Over time', 5),
        statusTimeline('Nova status', 'The Cloud Servers status over time.', [0, 6, 24, 4],
                       'rackconnect_server_status', { ACTIVE: 'green', BUILD: 'blue', ERROR: 'red' }),
        statusTimeline('RackConnect automation status', 'rackconnect_automation_status metadata value over time.',
                       [0, 10, 24, 5], 'rackconnect_automation_status', c.rackconnectStatusColors),
        statusTimeline('Managed Operations status', 'rax_service_level_automation metadata value over time.',
                       [0, 15, 24, 5], 'rackconnect_managed_operations_status', c.managedStatusColors),
        g.stateTimeline('Ready', 'rackconnect_server_ready over time.', [0, 20, 24, 3],
                        [g.target('min by (server_id) (%s)' % s('rackconnect_server_ready'), 'ready')],
                        [{ type: 'value', options: { '0': { text: 'not ready', color: 'yellow' }, '1': { text: 'ready', color: 'green' } } }],
                        [[null, 'yellow'], [1, 'green']]),
        g.row('Automation details', 23),
        g.table('RackConnect automation features', 'Each feature key in the metadata: 1 when ENABLED.', [0, 24, 12, 6],
                [g.target('max by (feature) (%s)' % s('rackconnect_automation_feature_enabled'), table=true)],
                [['feature', 'Feature'], ['Value', 'Enabled']]) + {
          transformations: [
            t + (if t.id == 'organize' then { options+: { excludeByName: { Time: true } } } else {})
            for t in super.transformations
          ],
          fieldConfig+: { defaults+: { mappings: lit } },
        },
        g.table('Unprocessable reason', 'Why RackConnect reports UNPROCESSABLE, when the metadata says.', [12, 24, 12, 6],
                [g.target('max by (server_id, reason) (%s)' % s('rackconnect_automation_unprocessable_info'), table=true)],
                [['server_id', 'Server ID'], ['reason', 'Reason']]),
      ],
      [
        // One account and one region at a time, so the server picker lists one region's
        // servers, never the whole fleet.
        g.variable('account', 'Account', 'label_values(%s, account)' % lib.series(c.rackconnectSelector, 'rackconnect_up'), multi=false),
        g.variable('region', 'Region', 'label_values(%s, region)' % lib.series(c.rackconnectSelector, 'rackconnect_up', 'account=~"$account", region!=""'), multi=false),
        g.variable('server_id', 'Server', 'label_values(%s, server_id)'
                   % lib.series(c.rackconnectSelector, 'rackconnect_server_info', 'account=~"$account", region=~"$region"'), multi=false),
      ],
    ),
  },
}
