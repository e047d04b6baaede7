// Plain-jsonnet builders for Grafana panels, variables and dashboards.
local datasource = { type: 'prometheus', uid: '${datasource}' };

{
  datasource:: datasource,

  // A Prometheus query; table: an instant query in table format.
  target(expr, legend='', ref='A', table=false)::
    { datasource: datasource, refId: ref, expr: expr } +
    (if table then { instant: true, range: false, format: 'table' }
     else { legendFormat: if legend == '' then '__auto' else legend, range: true }),

  // One panel at grid position [x, y, w, h].
  panel(kind, title, description, grid, targets, unit='short', options={}, custom={},
        overrides=[], transformations=[], thresholds=[[null, 'green']], defaults={}):: {
    type: kind,
    title: title,
    description: description,
    datasource: datasource,
    gridPos: { x: grid[0], y: grid[1], w: grid[2], h: grid[3] },
    targets: targets,
    fieldConfig: {
      defaults: {
        unit: unit,
        custom: custom,
        thresholds: {
          mode: 'absolute',
          steps: [{ color: t[1], value: t[0] } for t in thresholds],
        },
      } + defaults,
      overrides: overrides,
    },
    options: options,
  } + (if transformations != [] then { transformations: transformations } else {}),

  colorOverrides(colors):: [
    {
      matcher: { id: 'byName', options: name },
      properties: [{ id: 'color', value: { mode: 'fixed', fixedColor: colors[name] } }],
    }
    for name in std.objectFields(colors)
  ],

  timeseries(title, description, grid, targets, unit='short', stacked=false, bars=false,
             colors={}, thresholds=null)::
    self.panel(
      'timeseries', title, description, grid, targets,
      unit=unit,
      options={
        legend: { displayMode: 'table', placement: 'right', calcs: ['lastNotNull'] },
        tooltip: { mode: 'multi', sort: 'desc' },
      },
      custom={
        drawStyle: if bars then 'bars' else 'line',
        fillOpacity: if bars || stacked then 60 else 10,
        lineWidth: 1,
        stacking: { mode: if stacked then 'normal' else 'none', group: 'A' },
        showPoints: 'never',
      } + (if thresholds != null then { thresholdsStyle: { mode: 'line' } } else {}),
      overrides=self.colorOverrides(colors),
      thresholds=if thresholds != null then thresholds else [[null, 'green']],
    ),

  stat(title, description, grid, expr, thresholds, unit='short', mappings=[])::
    self.panel(
      'stat', title, description, grid, [self.target(expr, title)],
      unit=unit,
      options={
        reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
        colorMode: 'background',
        graphMode: 'area',
        textMode: 'value',
      },
      thresholds=thresholds,
      defaults=if mappings != [] then { mappings: mappings } else {},
    ),

  // A table of instant queries merged on their labels; columns: [field, header] pairs in order.
  table(title, description, grid, targets, columns, units={}, sortBy=null)::
    local headers = { [c[0]]: c[1] for c in columns };
    self.panel(
      'table', title, description, grid, targets,
      options={ showHeader: true, cellHeight: 'sm', footer: { show: false } }
              + (if sortBy != null then { sortBy: [{ displayName: sortBy, desc: true }] } else {}),
      custom={ align: 'auto', filterable: true },
      overrides=[
        {
          matcher: { id: 'byName', options: headers[field] },
          properties: [{ id: 'unit', value: units[field] }],
        }
        for field in std.objectFields(units)
      ],
      transformations=[
        { id: 'merge', options: {} },
        {
          id: 'organize',
          options: {
            excludeByName: { Time: true, Value: true } + {
              ['Value #' + t.refId]: true
              for t in targets
              if !std.objectHas(headers, 'Value #' + t.refId)
            },
            includeByName: {},
            indexByName: { [columns[i][0]]: i for i in std.range(0, std.length(columns) - 1) },
            renameByName: headers,
          },
        },
      ],
    ),

  // Rows of a state timeline: one per series, coloured by value.
  stateTimeline(title, description, grid, targets, mappings, thresholds)::
    self.panel(
      'state-timeline', title, description, grid, targets,
      options={ showValue: 'never', mergeValues: true, rowHeight: 0.8 },
      thresholds=thresholds,
      custom={ fillOpacity: 80, lineWidth: 0 },
      defaults={ color: { mode: 'thresholds' }, mappings: mappings },
    ),

  row(title, y):: {
    type: 'row',
    title: title,
    collapsed: false,
    gridPos: { x: 0, y: y, w: 24, h: 1 },
    panels: [],
  },

  // A query variable; multi: several values with All as the regex .*.
  variable(name, label, query, multi=true):: {
    name: name,
    label: label,
    type: 'query',
    datasource: datasource,
    definition: query,
    query: { query: query, refId: name + '-variable' },
    refresh: 2,
    sort: 1,
    multi: multi,
    includeAll: multi,
    hide: 0,
    options: [],
    regex: '',
  } + (
    if multi then
      { allValue: '.*', current: { selected: true, text: ['All'], value: ['$__all'] } }
    else { current: {} }
  ),

  dashboard(uid, title, description, tags, panels, variables):: {
    uid: uid,
    title: title,
    description: description,
    tags: tags,
    editable: true,
    graphTooltip: 1,
    timezone: 'browser',
    refresh: '1m',
    time: { from: 'now-6h', to: 'now' },
    schemaVersion: 39,
    version: 1,
    fiscalYearStartMonth: 0,
    liveNow: false,
    weekStart: '',
    annotations: {
      list: [
        {
          builtIn: 1,
          datasource: { type: 'grafana', uid: '-- Grafana --' },
          enable: true,
          hide: true,
          iconColor: 'rgba(0, 211, 255, 1)',
          name: 'Annotations & Alerts',
          type: 'dashboard',
        },
      ],
    },
    links: [
      {
        type: 'dashboards',
        tags: [tags[0]],
        asDropdown: false,
        includeVars: true,
        keepTime: true,
        title: 'RackConnect',
      },
    ],
    templating: {
      list: [
        {
          name: 'datasource',
          label: 'Data source',
          type: 'datasource',
          query: 'prometheus',
          current: {},
          hide: 0,
          includeAll: false,
          multi: false,
          options: [],
          refresh: 1,
          regex: '',
        },
      ] + variables,
    },
    panels: [panels[i] { id: i + 1 } for i in std.range(0, std.length(panels) - 1)],
  },
}
