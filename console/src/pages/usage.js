// Usage and cost over time: GET /v1/usage in hour or day buckets, grouped as asked, as a chart, a table and CSV.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import { call } from '../api.js';
import { html } from '../html.js';
import { ErrorLine } from '../widgets.js';

const HOUR = 3600;
const DAY = 86400;
const RANGES = {
  '24h': { label: 'Last 24 hours, hourly', width: '1h', step: HOUR, buckets: 24, limit: 168 },
  '7d': { label: 'Last 7 days, daily', width: '1d', step: DAY, buckets: 7, limit: 31 },
  '30d': { label: 'Last 30 days, daily', width: '1d', step: DAY, buckets: 30, limit: 31 },
};
const GROUPS = { '': 'Nothing (totals)', model: 'Model', key: 'API key', route: 'Route' };
const METRICS = { num_model_requests: 'Requests', units: 'Units', cost: 'Cost (USD)' };
// The group's field in a result: "key" is the API's short name for OpenAI's api_key_id.
const FIELD = { model: 'model', key: 'api_key_id', route: 'route' };
const COLOURS = ['#2563eb', '#d97706', '#059669', '#db2777', '#7c3aed', '#0891b2', '#65a30d', '#dc2626'];

// Every page of buckets from the range's first whole hour or day to now.
async function fetchBuckets(range, group) {
  const now = Math.floor(Date.now() / 1000);
  const start = Math.floor(now / range.step) * range.step - (range.buckets - 1) * range.step;
  const query = new URLSearchParams({ start_time: String(start), bucket_width: range.width, limit: String(range.limit) });
  if (group) query.append('group_by', group);
  const buckets = [];
  for (;;) {
    const answer = await call(`/v1/usage?${query}`);
    buckets.push(...answer.body.data);
    if (!answer.body.has_more) return buckets;
    query.set('page', answer.body.next_page);
  }
}

// One row per bucket and result: what the table shows and the CSV holds.
function rowsOf(buckets, group) {
  return buckets.flatMap((bucket) =>
    bucket.results.map((result) => ({
      start: new Date(bucket.start_time * 1000).toISOString(),
      group: group ? result[FIELD[group]] ?? '' : '',
      unit: result.unit,
      requests: result.num_model_requests,
      units: result.units,
      cost: result.cost,
    })),
  );
}

function csvOf(rows, group) {
  const quote = (value) => `"${String(value).replace(/"/g, '""')}"`;
  const header = ['bucket_start', group || 'group', 'unit', 'requests', 'units', 'cost_usd'];
  const lines = rows.map((row) => [row.start, row.group, row.unit, row.requests, row.units, row.cost].map(quote));
  return [header.map(quote), ...lines].map((line) => line.join(',')).join('\r\n') + '\r\n';
}

function download(text, name) {
  const url = URL.createObjectURL(new Blob([text], { type: 'text/csv' }));
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function Chart({ buckets, group, metric }) {
  const holder = useRef(null);
  useEffect(() => {
    const times = buckets.map((bucket) => bucket.start_time);
    const names = [...new Set(buckets.flatMap((b) => b.results.map((r) => (group ? r[FIELD[group]] ?? '(none)' : 'all'))))];
    const series = names.map((name) =>
      buckets.map((bucket) =>
        bucket.results
          .filter((r) => (group ? (r[FIELD[group]] ?? '(none)') === name : true))
          .reduce((sum, r) => sum + r[metric], 0),
      ),
    );
    const width = () => Math.max(280, holder.current.clientWidth);
    const plot = new uPlot(
      {
        width: width(),
        height: 260,
        series: [
          {},
          ...names.map((name, n) => ({ label: name || '(none)', stroke: COLOURS[n % COLOURS.length], width: 2 })),
        ],
        axes: [{}, { label: METRICS[metric] }],
      },
      [times, ...series],
      holder.current,
    );
    const resize = new ResizeObserver(() => plot.setSize({ width: width(), height: 260 }));
    resize.observe(holder.current);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [buckets, group, metric]);
  return html`<div class="chart" ref=${holder} role="img" aria-label=${`${METRICS[metric]} per bucket`}></div>`;
}

export function Usage() {
  const [rangeName, setRange] = useState('24h');
  const [group, setGroup] = useState('');
  const [metric, setMetric] = useState('num_model_requests');
  const [buckets, setBuckets] = useState(null);
  const [error, setError] = useState(null);
  const [loading, setLoading] = useState(false);
  const [tick, setTick] = useState(0);
  const range = RANGES[rangeName];

  useEffect(() => {
    let current = true;
    setLoading(true);
    setError(null);
    fetchBuckets(range, group)
      .then((found) => current && setBuckets(found))
      .catch((failure) => current && setError(`Usage could not be read: ${failure.message}`))
      .finally(() => current && setLoading(false));
    return () => {
      current = false;
    };
  }, [rangeName, group, tick]);

  const rows = useMemo(() => (buckets ? rowsOf(buckets, group) : []), [buckets, group]);
  const totals = rows.reduce(
    (sum, row) => ({ requests: sum.requests + row.requests, units: sum.units + row.units, cost: sum.cost + row.cost }),
    { requests: 0, units: 0, cost: 0 },
  );

  return html`<section aria-busy=${loading}>
    <form class="controls" onSubmit=${(event) => event.preventDefault()}>
      <label>Range
        <select value=${rangeName} onChange=${(event) => setRange(event.currentTarget.value)}>
          ${Object.entries(RANGES).map(([name, each]) => html`<option value=${name}>${each.label}</option>`)}
        </select>
      </label>
      <label>Group by
        <select value=${group} onChange=${(event) => setGroup(event.currentTarget.value)}>
          ${Object.entries(GROUPS).map(([name, label]) => html`<option value=${name}>${label}</option>`)}
        </select>
      </label>
      <label>Chart
        <select value=${metric} onChange=${(event) => setMetric(event.currentTarget.value)}>
          ${Object.entries(METRICS).map(([name, label]) => html`<option value=${name}>${label}</option>`)}
        </select>
      </label>
      <button type="button" onClick=${() => setTick(tick + 1)}>Refresh</button>
      <button type="button" class="secondary" disabled=${!rows.length}
        onClick=${() => download(csvOf(rows, group), `aimass-usage-${rangeName}.csv`)}>Export CSV</button>
    </form>
    <${ErrorLine} error=${error} />
    <dl class="totals" aria-live="polite">
      <div><dt>Requests</dt><dd data-testid="total-requests">${totals.requests}</dd></div>
      <div><dt>Units</dt><dd data-testid="total-units">${totals.units}</dd></div>
      <div><dt>Cost</dt><dd data-testid="total-cost">$${totals.cost.toFixed(6)}</dd></div>
    </dl>
    ${buckets && html`<${Chart} buckets=${buckets} group=${group} metric=${metric} />`}
    <div class="table">
      <table>
        <caption>Usage per ${range.width === '1h' ? 'hour' : 'day'} (UTC)</caption>
        <thead><tr><th scope="col">Bucket start</th>${group && html`<th scope="col">${GROUPS[group]}</th>`}
          <th scope="col">Unit</th><th scope="col">Requests</th><th scope="col">Units</th><th scope="col">Cost (USD)</th></tr></thead>
        <tbody>
          ${rows.length === 0
            ? html`<tr><td colspan=${group ? 6 : 5}>${loading ? 'Loading…' : 'No usage in this range.'}</td></tr>`
            : rows.map(
                (row) => html`<tr><td>${row.start.replace('T', ' ').slice(0, 16)}</td>${group && html`<td>${row.group}</td>`}
                  <td>${row.unit}</td><td>${row.requests}</td><td>${row.units}</td><td>${row.cost.toFixed(6)}</td></tr>`,
              )}
        </tbody>
      </table>
    </div>
  </section>`;
}
