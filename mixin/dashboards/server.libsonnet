// One server: its statuses over time, features, Managed Operations, Nova status and age.
// Alerts about one server link here with account, region and server_id set.
local lib = import '../lib.libsonnet';
local g = import 'lib.libsonnet';

{
  grafanaDashboards+:: {
    local c = $._config,
    local sel = 'account=~"$account", region=~"$region", server_id=~"$server_id"',
    local s(metric, extra='') = lib.series(c.rackconnectSelector, metric, std.join(', ', std.filter(function(x) x != '', [sel, extra]))),
    // The region's load balancer pools: per region, so no server_id.
    local pools = lib.series(c.rackconnectSelector, 'rackconnect_v3_pool_info', 'account=~"$account", region=~"$region"'),
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
        g.row('RackConnect v3.0', 30),
        g.table('RackConnect v3.0 public IPs', 'Each public IP of the server, its address ("" until allocated) and state.',
                [0, 31, 12, 6],
                [g.target('max by (public_ip_id, address, status) (\n  %s\n  * on (%s, public_ip_id) group_left (status)\n    max by (%s, public_ip_id, status) (%s == 1)\n)'
                          % [s('rackconnect_v3_public_ip_info'), lib.server, lib.server, s('rackconnect_v3_public_ip_status')], table=true)],
                [['public_ip_id', 'Public IP'], ['address', 'Address'], ['status', 'Status']]),
        g.table('RackConnect v3.0 pool memberships',
                'Each load balancer pool the server is a member of (its name, port and virtual IP from the region\'s pools), and the state of the membership.',
                [12, 31, 12, 6],
                [g.target(('max by (pool_id, name, port, virtual_ip, status) (\n  (%s == 1)\n  * on (account, region, pool_id) group_left (name, port, virtual_ip)\n'
                           + '    max by (account, region, pool_id, name, port, virtual_ip) (%s)\n  or on (account, region, server_id, pool_id)\n  %s == 1\n)')
                          % [s('rackconnect_v3_pool_node_status'), pools, s('rackconnect_v3_pool_node_status')], table=true)],
                [['name', 'Pool'], ['pool_id', 'Pool ID'], ['port', 'Port'], ['virtual_ip', 'Virtual IP'], ['status', 'Status']]),
        g.table('RackConnect v3.0 status details', 'Why a public IP or pool membership is in its state, where RackConnect says (status_detail).',
                [0, 37, 24, 5],
                [g.target('max by (resource, resource_id, detail) (%s)' % s('rackconnect_v3_status_detail_info'), table=true)],
                [['resource', 'Resource'], ['resource_id', 'ID'], ['detail', 'Detail']]),
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
