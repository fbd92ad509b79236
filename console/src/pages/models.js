// Every model under this base URL: domain, task, serving version, canary and its share, why a version is not
// serving. With an admin key, from the management API (/v1/admin/models): each version's card (quality, state,
// the reason it was rejected), the aliases' history, and promote, canary and rollback. Without one, the public
// listing (/v1/models with each model's V2 metadata) and the management API's refusal in its own words.
import { useState } from 'preact/hooks';
import { call, forgetModels } from '../api.js';
import { html } from '../html.js';
import { ErrorLine, Outcome, TableBox, useGet, useModels, useSubmit, when } from '../widgets.js';

const tensors = (list) => (list || []).map((t) => `${t.name} ${t.datatype} [${t.shape.join(', ')}]`).join('; ');
const newest = (versions) => [...versions].sort((a, b) => Number(b) - Number(a));
const size = (bytes) => (bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${(bytes / 1e3).toFixed(1)} kB`);
const path = (name) => `/v1/admin/models/${encodeURIComponent(name)}`;

// One row per model, from the admin listing when there is one, else from the public metadata.
function rowsOf(admin, models) {
  const meta = Object.fromEntries((models || []).map((model) => [model.id, model]));
  if (admin) {
    return admin.models.map((model) => {
      const params = (meta[model.name] && meta[model.name].meta && meta[model.name].meta.parameters) || {};
      return { ...model, rejected: params.rejected || '' };
    });
  }
  return (models || []).map((model) => {
    const params = (model.meta && model.meta.parameters) || {};
    return {
      name: model.id,
      domain: params.domain ?? '',
      task: params.task ?? model.error ?? '',
      serving: params.serving_version || null,
      canary: params.canary_version || null,
      canary_percent: params.canary_percent || 0,
      versions: (model.meta && model.meta.versions) || [],
      rejected: params.rejected || '',
    };
  });
}

// Why each version last left service, from the aliases history: a canary ended (by an operator, or by its policy
// with the numbers it judged on) or a production version rolled back; forgotten once it serves again.
function rejections(history) {
  const why = {};
  let production = null;
  let canary = null;
  for (const change of history) {
    if (change.action === 'end-canary' && canary) why[canary] = `canary ended: ${change.reason || 'no reason given'}`;
    if (change.action === 'rollback' && production && production !== change.production) {
      why[production] = `rolled back: ${change.reason || 'no reason given'}`;
    }
    if (change.action === 'promote') delete why[change.production];
    if (change.action === 'canary') delete why[change.canary];
    production = change.production;
    canary = change.canary;
  }
  return why;
}

// As the API's own CanaryPolicy.describe() says it.
function policyOf(policy) {
  const latency = policy.max_latency_ms !== null ? `, p95 within ${policy.max_latency_ms} ms` : '';
  return `promoted after ${policy.min_requests} requests with at most ${(policy.max_error_rate * 100).toFixed(2)} % errors${latency}; rolled back past them`;
}

function canaryOf(row) {
  return row.canary ? `${row.canary} (${row.canary_percent} %)` : 'none';
}

// A version's quality as its card states it: the figures inline, every field in a disclosure.
function Quality({ quality }) {
  const entries = Object.entries(quality || {});
  if (!entries.length) return html`<span class="hint">not stated</span>`;
  const figures = entries.filter(([, value]) => typeof value === 'number');
  return html`<span>${figures.map(([name, value]) => `${name} ${value}`).join(', ')}</span>
    <details><summary>Card</summary>
      <dl class="card-fields">${entries.map(([name, value]) => html`<dt>${name}</dt><dd>${
        typeof value === 'object' ? JSON.stringify(value) : String(value)
      }</dd>`)}</dl>
    </details>`;
}

// One move of the aliases (promote, canary, rollback): the form's fields, the API's answer or refusal.
function Move({ name, action, label, versions, fields, onMoved }) {
  const [version, setVersion] = useState(versions[0] || '');
  const [percent, setPercent] = useState('10');
  const [policy, setPolicy] = useState({ min_requests: '', max_error_rate: '0', max_latency_ms: '' });
  const [reason, setReason] = useState('');
  const [force, setForce] = useState(false);
  const move = async () => {
    const json = { reason };
    if (fields.version) Object.assign(json, { version, force });
    if (fields.percent) json.percent = Number(percent);
    // A policy only when the requests before a decision are given: without one an operator ends the canary.
    if (fields.policy && policy.min_requests !== '') {
      json.policy = { min_requests: Number(policy.min_requests), max_error_rate: Number(policy.max_error_rate) / 100 };
      if (policy.max_latency_ms !== '') json.policy.max_latency_ms = Number(policy.max_latency_ms);
    }
    const answer = await call(`${path(name)}/${action}`, { method: 'POST', json });
    const aliases = answer.body;
    const canary = aliases.canary ? `; canary ${aliases.canary} at ${aliases.canary_percent} %` : '';
    onMoved(`${label}: done. Serving version ${aliases.serving}${canary}.`);
  };
  const { busy, error, submit } = useSubmit(move, (failure) => `${label} was refused: ${failure.message}`);
  const id = `${action}-${name}`;
  return html`<form class="move" aria-label=${label} onSubmit=${submit}>
    <h4>${label}</h4>
    ${fields.version &&
    html`<label for=${`${id}-version`}>Version</label>
      <select id=${`${id}-version`} value=${version} onChange=${(e) => setVersion(e.currentTarget.value)}>
        ${versions.map((v) => html`<option value=${v}>${v}</option>`)}
      </select>`}
    ${fields.percent &&
    html`<label for=${`${id}-percent`}>Share (%)</label>
      <input id=${`${id}-percent`} type="number" min="1" max="99" required value=${percent}
        onInput=${(e) => setPercent(e.currentTarget.value)} />`}
    ${fields.policy &&
    html`<fieldset>
      <legend>Ends by itself (optional)</legend>
      ${[
        ['min_requests', 'Decide after (requests)', { min: '1', step: '1' }],
        ['max_error_rate', 'Errors allowed (%)', { min: '0', max: '100', step: 'any' }],
        ['max_latency_ms', 'p95 limit (ms)', { min: '0', step: 'any' }],
      ].map(
        ([field, text, bounds]) => html`<label for=${`${id}-${field}`}>${text}</label>
          <input id=${`${id}-${field}`} type="number" ...${bounds} value=${policy[field]}
            onInput=${(e) => setPolicy({ ...policy, [field]: e.currentTarget.value })} />`,
      )}
    </fieldset>`}
    <label for=${`${id}-reason`}>Reason</label>
    <input id=${`${id}-reason`} maxlength="500" value=${reason} onInput=${(e) => setReason(e.currentTarget.value)} />
    ${fields.version &&
    html`<label class="check"><input type="checkbox" checked=${force} onChange=${(e) => setForce(e.currentTarget.checked)} />
      Even if its check fails</label>`}
    <button type="submit" disabled=${busy || (fields.version && !version)}>${label}</button>
    <${ErrorLine} error=${error} />
  </form>`;
}

function AdminDetail({ name, rejected, onChanged }) {
  const detail = useGet(path(name));
  // Kept here, not in the form: a move remounts the forms with the new versions to choose from.
  const [last, setLast] = useState(null);
  if (detail.error) return html`<${ErrorLine} error=${`Model ${name} could not be read: ${detail.error.message}`} />`;
  if (!detail.body) return html`<p aria-busy="true">Loading…</p>`;
  const { versions, aliases } = detail.body;
  const numbers = newest(versions.map((v) => v.version));
  const left = rejections(aliases.history);
  const others = numbers.filter((v) => v !== aliases.serving);
  const refresh = () => {
    setLast(null);
    detail.reload();
    onChanged();
  };
  const moved = (message) => {
    setLast(message);
    forgetModels();
    detail.reload();
    onChanged();
  };
  return html`
    <dl class="facts">
      <div><dt>Serving</dt><dd data-testid="serving">${aliases.serving ?? 'none'}</dd></div>
      <div><dt>Production</dt><dd>${aliases.production ?? 'none promoted (the newest serves)'}</dd></div>
      <div><dt>Canary</dt><dd data-testid="canary">${aliases.canary ? `${aliases.canary} at ${aliases.canary_percent} %` : 'none'}</dd></div>
      ${aliases.canary_policy &&
      html`<div><dt>Canary policy</dt><dd data-testid="canary-policy">${policyOf(aliases.canary_policy)}</dd></div>`}
    </dl>
    <button type="button" class="secondary" onClick=${refresh}>Refresh</button>
    ${rejected && html`<p class="error">Rejected: ${rejected}</p>`}
    <h3>Versions</h3>
    <${TableBox} label=${`Versions of ${name}`}>
      <table>
        <thead><tr><th scope="col">Version</th><th scope="col">Created (UTC)</th><th scope="col">Task</th>
          <th scope="col">State</th><th scope="col">Why rejected</th><th scope="col">Quality</th>
          <th scope="col">Size</th></tr></thead>
        <tbody>
          ${[...versions].reverse().map(
            (v) => html`<tr data-version=${v.version}>
              <th scope="row">${v.version}</th><td>${when(v.created_at)}</td><td>${v.task}</td>
              <td>${v.state ?? 'not loaded here'}</td><td data-testid="why-rejected">${[v.reason, left[v.version]].filter(Boolean).join('; ')}</td>
              <td><${Quality} quality=${v.quality} /></td><td>${size(v.bytes)}</td>
            </tr>`,
          )}
        </tbody>
      </table>
    </${TableBox}>
    <h3>Alias history</h3>
    <${TableBox} label=${`Alias history of ${name}`}>
      <table data-testid="alias-history">
        <thead><tr><th scope="col">At (UTC)</th><th scope="col">Action</th><th scope="col">Production</th>
          <th scope="col">Canary</th><th scope="col">Reason</th></tr></thead>
        <tbody>
          ${aliases.history.length === 0
            ? html`<tr><td colspan="5">No change yet: the newest version serves.</td></tr>`
            : [...aliases.history].reverse().map(
                (h) => html`<tr><td>${when(h.at)}</td><td>${h.action}</td><td>${h.production ?? ''}</td>
                  <td>${h.canary ? `${h.canary} (${h.canary_percent} %)` : ''}</td><td>${h.reason}</td></tr>`,
              )}
        </tbody>
      </table>
    </${TableBox}>
    <h3>Change what serves</h3>
    <${Outcome} done=${last} />
    <div class="moves">
      <${Move} key=${`p${numbers.join()}-${aliases.serving}-${aliases.canary}`} name=${name} action="promote" label="Promote" onMoved=${moved}
        versions=${aliases.canary ? [aliases.canary, ...others.filter((v) => v !== aliases.canary)] : others}
        fields=${{ version: true }} />
      <${Move} key=${`c${numbers.join()}-${aliases.serving}`} name=${name} action="canary" label="Set canary" onMoved=${moved}
        versions=${others} fields=${{ version: true, percent: true, policy: true }} />
      <${Move} name=${name} action="rollback" label="Roll back" onMoved=${moved} versions=${[]} fields=${{}} />
    </div>`;
}

function PublicDetail({ model, refusal }) {
  const meta = (model && model.meta) || {};
  return html`<dl class="facts">
      <div><dt>Inputs</dt><dd>${tensors(meta.inputs)}</dd></div>
      <div><dt>Outputs</dt><dd>${tensors(meta.outputs)}</dd></div>
    </dl>
    <p class="hint">Version cards, the alias history and changes need a key with the admin scope: ${refusal}</p>`;
}

export function Models() {
  const admin = useGet('/v1/admin/models');
  const { models, pending } = useModels();
  const [open, setOpen] = useState(null);
  if (admin.loading && !admin.body && !admin.error) return html`<p aria-busy="true">Loading…</p>`;
  // Without the admin scope (a 403), or where the management API is not served, the public view.
  const refusal = admin.error ? admin.error.message : null;
  if (refusal && pending) return pending;
  const rows = rowsOf(admin.body, models);
  const shown = rows.find((row) => row.name === open);
  return html`${refusal &&
    html`<p class="note" role="note" data-testid="read-only">Read-only view. The management API answered: ${refusal}</p>`}
    <${TableBox} label="Models">
      <table>
        <caption>${rows.length} model(s)</caption>
        <thead><tr><th scope="col">Model</th><th scope="col">Domain</th><th scope="col">Task</th>
          <th scope="col">Serving</th><th scope="col">Canary (share)</th><th scope="col">Versions</th>
          <th scope="col">Rejected</th><th scope="col">Details</th></tr></thead>
        <tbody>
          ${rows.map(
            (row) => html`<tr data-model=${row.name}>
              <th scope="row">${row.name}</th><td>${row.domain ?? ''}</td><td>${row.task ?? ''}</td>
              <td data-testid="serving-version">${row.serving ?? ''}</td><td data-testid="canary-share">${canaryOf(row)}</td>
              <td>${newest(row.versions).join(', ')}</td><td>${row.rejected}</td>
              <td><button type="button" class="secondary" aria-expanded=${open === row.name}
                aria-controls="model-detail" aria-label=${`Details of ${row.name}`}
                onClick=${() => setOpen(open === row.name ? null : row.name)}>Details</button></td>
            </tr>`,
          )}
        </tbody>
      </table>
    </${TableBox}>
    ${shown &&
    html`<section id="model-detail" aria-labelledby="model-detail-heading">
      <h2 id="model-detail-heading">Model ${shown.name}</h2>
      ${refusal
        ? html`<${PublicDetail} model=${(models || []).find((m) => m.id === shown.name)} refusal=${refusal} />`
        : html`<${AdminDetail} key=${shown.name} name=${shown.name} rejected=${shown.rejected} onChanged=${admin.reload} />`}
    </section>`}`;
}
