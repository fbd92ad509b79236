// Usage and cost over time: GET /v1/usage in hour or day buckets over a chosen range, grouped as asked, as a chart,
// a table and CSV; and this month's cost so far with the quota left (the first page's "quota").
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import { call } from '../api.js';
import { html } from '../html.js';
import { ErrorLine, TableBox, when } from '../widgets.js';

const HOUR = 3600;
const DAY = 86400;
const WIDTHS = { '1h': { label: 'Hour', step: HOUR, limit: 168, most: 744 }, '1d': { label: 'Day', step: DAY, limit: 31, most: 366 } };
// Each range: its start and end (unix seconds, the end excluded) at `now`, and the bucket it is best read in.
const RANGES = {
  '24h': { label: 'Last 24 hours', width: '1h', span: () => lastSeconds(DAY) },
  '7d': { label: 'Last 7 days', width: '1d', span: () => lastSeconds(7 * DAY) },
  '30d': { label: 'Last 30 days', width: '1d', span: () => lastSeconds(30 * DAY) },
  month: { label: 'This month (UTC)', width: '1d', span: () => [monthStart(), nowSeconds()] },
  custom: { label: 'Chosen dates (UTC)', width: '1d', span: null },
};
const GROUPS = { '': 'Nothing (totals)', model: 'Model', key: 'API key', route: 'Route' };
const METRICS = { num_model_requests: 'Requests', units: 'Units', cost: 'Cost (USD)' };
// The group's field in a result: "key" is the API's short name for OpenAI's api_key_id.
const FIELD = { model: 'model', key: 'api_key_id', route: 'route' };
const COLOURS = ['#2563eb', '#d97706', '#059669', '#db2777', '#7c3aed', '#0891b2', '#65a30d', '#dc2626'];

const nowSeconds = () => Math.ceil(Date.now() / 1000);
const lastSeconds = (seconds) => [nowSeconds() - seconds, nowSeconds()];
function monthStart() {
  const today = new Date();
  return Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), 1) / 1000;
}
const day = (seconds) => new Date(seconds * 1000).toISOString().slice(0, 10);
const seconds = (date) => Date.parse(`${date}T00:00:00Z`) / 1000;

// The range asked for, in whole buckets: [start, end) in unix seconds, or a sentence saying what is wrong.
function spanOf(rangeName, width, from, to) {
  const step = WIDTHS[width].step;
  let [start, end] = RANGES[rangeName].span ? RANGES[rangeName].span() : [seconds(from), seconds(to) + DAY];
  if (Number.isNaN(start) || Number.isNaN(end)) return 'choose both dates';
  end = Math.min(end, nowSeconds());
  start = Math.floor(start / step) * step;
  if (end <= start) return 'the first date must be before the last, and not in the future';
  const buckets = Math.ceil((end - start) / step);
  if (buckets > WIDTHS[width].most) {
    return `${buckets} ${WIDTHS[width].label.toLowerCase()} buckets asked; at most ${WIDTHS[width].most}: choose day buckets or a shorter range`;
  }
  return [start, end];
}

// Every page of buckets of [start, end) and the first page's quota.
async function fetchBuckets([start, end], width, group) {
  const query = new URLSearchParams({
    start_time: String(start), end_time: String(end), bucket_width: width, limit: String(WIDTHS[width].limit),
  });
  if (group) query.append('group_by', group);
  const buckets = [];
  let quota;
  for (;;) {
    const answer = await call(`/v1/usage?${query}`);
    buckets.push(...answer.body.data);
    if (quota === undefined) quota = answer.body.quota ?? null;
    if (!answer.body.has_more) return { buckets, quota };
    query.set('page', answer.body.next_page);
  }
}

const sum = (buckets, field) => buckets.reduce((total, b) => total + b.results.reduce((s, r) => s + r[field], 0), 0);

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

// This month so far (UTC): cost, units, and what the plan's monthly quota has left.
function Month({ tick }) {
  const [month, setMonth] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    let current = true;
    fetchBuckets([monthStart(), nowSeconds()], '1d', '')
      .then(({ buckets, quota }) => current && setMonth({ cost: sum(buckets, 'cost'), units: sum(buckets, 'units'), quota }))
      .catch((failure) => current && setError(`This month's usage could not be read: ${failure.message}`));
    return () => {
      current = false;
    };
  }, [tick]);
  if (error) return html`<${ErrorLine} error=${error} />`;
  const quota = month && month.quota;
  return html`<section aria-labelledby="month-heading" class="month">
    <h2 id="month-heading">This month (UTC)</h2>
    <dl class="totals">
      <div><dt>Cost so far</dt><dd data-testid="month-cost">${month ? `$${month.cost.toFixed(6)}` : '…'}</dd></div>
      <div><dt>Units used</dt><dd data-testid="month-units">${quota ? quota.used_units : month ? month.units : '…'}</dd></div>
      <div><dt>Quota left</dt><dd data-testid="quota-left">${quota ? quota.remaining_units : month ? 'not stated' : '…'}</dd></div>
    </dl>
    ${quota &&
    html`<p class="hint" data-testid="quota-plan">Plan <strong>${quota.plan}</strong>: ${quota.monthly_units} units a month
      for the tenant; resets ${when(quota.resets_at)} UTC.</p>`}
  </section>`;
}

export function Usage() {
  const [rangeName, setRange] = useState('24h');
  const [width, setWidth] = useState('1h');
  const [from, setFrom] = useState(day(nowSeconds() - 6 * DAY));
  const [to, setTo] = useState(day(nowSeconds()));
  const [group, setGroup] = useState('');
  const [metric, setMetric] = useState('num_model_requests');
  const [buckets, setBuckets] = useState(null);
  const [error, setError] = useState(null);
  const [loading, setLoading] = useState(false);
  const [tick, setTick] = useState(0);
  const span = spanOf(rangeName, width, from, to);
  const key = typeof span === 'string' ? span : span.join('-');

  useEffect(() => {
    if (typeof span === 'string') {
      setError(`Usage not asked: ${span}.`);
      setBuckets(null);
      return undefined;
    }
    let current = true;
    setLoading(true);
    setError(null);
    fetchBuckets(span, width, group)
      .then((found) => current && setBuckets(found.buckets))
      .catch((failure) => current && setError(`Usage could not be read: ${failure.message}`))
      .finally(() => current && setLoading(false));
    return () => {
      current = false;
    };
  }, [rangeName, width, from, to, group, tick]);

  const rows = useMemo(() => (buckets ? rowsOf(buckets, group) : []), [buckets, group]);
  const totals = rows.reduce(
    (sum, row) => ({ requests: sum.requests + row.requests, units: sum.units + row.units, cost: sum.cost + row.cost }),
    { requests: 0, units: 0, cost: 0 },
  );
  const pick = (name) => {
    setRange(name);
    setWidth(RANGES[name].width);
  };

  return html`<${Month} tick=${tick} />
  <section aria-labelledby="range-heading" aria-busy=${loading} data-span=${key}>
    <h2 id="range-heading">Over time</h2>
    <form class="controls" onSubmit=${(event) => event.preventDefault()}>
      <label>Range
        <select value=${rangeName} onChange=${(event) => pick(event.currentTarget.value)}>
          ${Object.entries(RANGES).map(([name, each]) => html`<option value=${name}>${each.label}</option>`)}
        </select>
      </label>
      ${rangeName === 'custom' &&
      html`<label>First day <input type="date" value=${from} max=${to} onChange=${(e) => setFrom(e.currentTarget.value)} /></label>
        <label>Last day <input type="date" value=${to} min=${from} onChange=${(e) => setTo(e.currentTarget.value)} /></label>`}
      <label>Buckets
        <select value=${width} onChange=${(event) => setWidth(event.currentTarget.value)}>
          ${Object.entries(WIDTHS).map(([name, each]) => html`<option value=${name}>${each.label}</option>`)}
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
    <${TableBox} label="Usage per bucket">
      <table>
        <caption>Usage per ${width === '1h' ? 'hour' : 'day'} (UTC)</caption>
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
    </${TableBox}>
  </section>`;
}
