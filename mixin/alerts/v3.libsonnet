// The RackConnect v3.0 part of the alert group: the records of the public IPs and pool
// memberships that are not ACTIVE (value 1 only, so their cost follows the failures), and
// the alerts on them. alerts.libsonnet calls this with its helpers (h) and places the
// records before the alerts. rackconnect_region_info{rackconnect="false"} speaks of v2.0
// metadata (a v3.0 region usually has it): these alerts do not skip those regions.
local lib = import '../lib.libsonnet';

function(c, h) {
  local s = h.s,
  local rec = lib.serverRecords,
  local server = lib.server,
  local failed = 'status=~"ADD_FAILED|REMOVE_FAILED"',
  local moving = 'status=~"ADDING|REMOVING"',
  // The status_detail of the resource, as AutomationUnprocessable gives its reason. The
  // matchers after the server's are given with the label that fills each (%q).
  local detail(matchers, labels) =
    '(detail: {{ with printf `%s` $labels.account $labels.region $labels.server_id%s | query }}'
    % [
      s('rackconnect_v3_status_detail_info', 'account=%q, region=%q, server_id=%q, ' + matchers),
      std.join('', [' $labels.' + l for l in labels]),
    ]
    + '{{ . | first | label "detail" }}{{ else }}none given{{ end }})',

  records: [
    {
      record: rec.v3PublicIP,
      expr: h.oneReplica('%s == 1' % s('rackconnect_v3_public_ip_status', 'status!="ACTIVE"')),
    },
    {
      record: rec.v3PoolNode,
      expr: h.oneReplica('%s == 1' % s('rackconnect_v3_pool_node_status', 'status!="ACTIVE"')),
    },
  ],

  // What RackConnectServerNotReady leaves to the alerts below.
  covered: [s(rec.v3PublicIP, 'status!="UNKNOWN"'), s(rec.v3PoolNode, 'status!="UNKNOWN"')],

  alerts: [
    h.alert(
      'RackConnectV3PublicIPFailed',
      h.perServer(s(rec.v3PublicIP, failed)),
      'RackConnect v3.0 could not add or remove a public IP of a cloud server.',
      'RackConnect v3.0 public IP {{ $labels.public_ip_id }} of %s, is {{ $labels.status }} ' % h.theServer
      + detail('resource="public_ip", resource_id=%q', ['public_ip_id']) + '.',
      h.fleet,
    ),
    h.alert(
      'RackConnectV3PoolNodeFailed',
      h.perServer(s(rec.v3PoolNode, failed)),
      'RackConnect v3.0 could not add a cloud server to a load balancer pool or remove it.',
      'The membership of %s, in load balancer pool ' % h.theServer
      + '{{ with printf `%s` $labels.account $labels.region $labels.pool_id | query }}'
        % s('rackconnect_v3_pool_info', 'account=%q, region=%q, pool_id=%q')
      + '{{ . | first | label "name" }} {{ end }}({{ $labels.pool_id }}) is {{ $labels.status }} '
      + detail('resource="pool_node", resource_id=%q', ['pool_id']) + '.',
      h.fleet,
    ),
    // v3.0 exposes no time at which a public IP or a pool membership entered its state (nor
    // does the exporter), so the age is how long Prometheus has seen it there: the `for`,
    // _config.rackconnectV3StuckSeconds. An exporter restart that drops the series until its
    // first poll restarts the count.
    h.alert(
      'RackConnectV3Stuck',
      h.perServer(
        '(\n    label_replace(%s, "resource", "public IP", "", "")\n  or\n'
        % s(rec.v3PublicIP, moving)
        + '    label_replace(%s, "resource", "pool membership", "", "")\n)'
          % s(rec.v3PoolNode, moving)
      ),
      'A RackConnect v3.0 public IP or pool membership has been changing for too long.',
      'The RackConnect v3.0 {{ $labels.resource }} {{ $labels.public_ip_id }}{{ $labels.pool_id }} '
      + 'of %s, has been {{ $labels.status }} for more than %s.'
        % [h.theServer, lib.duration(c.rackconnectV3StuckSeconds)],
      h.fleet,
    ),
    h.alert(
      'RackConnectV3PollFailing',
      // A region whose whole poll fails has RackConnectPollFailing: this one says nothing more.
      '%s == 0\nunless\n  %s == 0' % [s('rackconnect_v3_up'), s('rackconnect_up')],
      'The exporter cannot poll the RackConnect v3.0 API of a Rackspace region.',
      '{{ $labels.instance }} has failed to poll the RackConnect v3.0 API of account '
      + '{{ $labels.account }}, region {{ $labels.region }}, for %s; ' % h.words(c.alertFor.RackConnectV3PollFailing)
      + 'its public IPs and pool memberships keep their last known state.',
      h.health(['account', 'region']),
    ),
  ],
}
