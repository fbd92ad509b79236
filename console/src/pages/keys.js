// API keys (admin keys only): create and rotate (the new secret shown once), list, revoke, through /v1/admin/keys.
import { useEffect, useState } from 'preact/hooks';
import { call } from '../api.js';
import { html } from '../html.js';
import { CopyButton, ErrorLine, TableBox, useSubmit, when } from '../widgets.js';

const HOUR = 3600;

function CreateKey({ onIssued }) {
  const [tenant, setTenant] = useState('');
  const [plan, setPlan] = useState('default');
  const [description, setDescription] = useState('');
  const [admin, setAdmin] = useState(false);
  const create = async () => {
    const json = { tenant: tenant.trim(), plan: plan.trim(), description, scopes: admin ? ['invoke', 'admin'] : ['invoke'] };
    const answer = await call('/v1/admin/keys', { method: 'POST', json });
    onIssued({ ...answer.body, what: 'created' });
  };
  const { busy, error, submit } = useSubmit(create, (failure) => `The key was not created: ${failure.message}`);
  return html`<section aria-labelledby="create-heading">
    <h2 id="create-heading">Create a key</h2>
    <form class="controls" onSubmit=${submit}>
      <label>Tenant <input name="tenant" required value=${tenant} onInput=${(e) => setTenant(e.currentTarget.value)} /></label>
      <label>Plan <input name="plan" required value=${plan} onInput=${(e) => setPlan(e.currentTarget.value)} /></label>
      <label>Description <input name="description" value=${description}
        onInput=${(e) => setDescription(e.currentTarget.value)} /></label>
      <label class="check"><input type="checkbox" checked=${admin} onChange=${(e) => setAdmin(e.currentTarget.checked)} />
        Admin scope</label>
      <button type="submit" disabled=${busy}>Create key</button>
    </form>
    <${ErrorLine} error=${error} />
  </section>`;
}

// A secret the API gave in the answer that made it (create or rotate), and nowhere else: shown this once.
function Secret({ issued }) {
  if (!issued) return null;
  const old = issued.old_key;
  return html`<div class="secret" role="status">
    <p>Key <strong>${issued.key.key_id}</strong> for tenant <strong>${issued.key.tenant}</strong> was ${issued.what}.
      Copy its secret now: it is shown this once.</p>
    ${old &&
    html`<p data-testid="grace">
      The old key <strong>${old.key_id}</strong> keeps working until <strong>${when(old.revoked_at)} UTC</strong>.
    </p>`}
    <div class="row"><code data-testid="new-secret">${issued.api_key}</code><${CopyButton} text=${issued.api_key} label="Copy key" /></div>
  </div>`;
}

function stateOf(item) {
  if (item.active) return item.revoked_at ? `active, in grace until ${when(item.revoked_at)}` : 'active';
  return item.revoked_at ? 'revoked' : 'expired';
}

function KeyRow({ item, onChanged, onIssued }) {
  const [asking, setAsking] = useState(null); // 'revoke' or 'rotate': the action waiting for its confirmation
  const [grace, setGrace] = useState(String(HOUR));
  const [error, setError] = useState(null);
  const act = async (action, json) => {
    setError(null);
    try {
      const answer = await call(`/v1/admin/keys/${encodeURIComponent(item.key_id)}/${action}`, { method: 'POST', json });
      if (action === 'rotate') onIssued({ ...answer.body, what: `rotated from key ${item.key_id}` });
      onChanged();
    } catch (failure) {
      setError(failure.message);
    } finally {
      setAsking(null);
    }
  };
  const id = `grace-${item.key_id}`;
  // A key in its grace period was already replaced: rotating it again would make a second successor.
  const replaceable = item.active && !item.revoked_at;
  return html`<tr data-key=${item.key_id}>
    <th scope="row"><code>${item.key_id}</code></th>
    <td>${item.tenant}</td><td>${item.scopes.join(', ')}</td><td>${item.plan}</td>
    <td>${when(item.created_at)}</td><td data-testid="key-state">${stateOf(item)}</td>
    <td>${item.description}</td>
    <td class="actions">
      ${replaceable && asking === null &&
      html`<button type="button" class="secondary" aria-label=${`Rotate key ${item.key_id}`}
          onClick=${() => setAsking('rotate')}>Rotate</button>
        <button type="button" class="secondary" aria-label=${`Revoke key ${item.key_id}`}
          onClick=${() => setAsking('revoke')}>Revoke</button>`}
      ${asking === 'revoke' &&
      html`<button type="button" class="danger" aria-label=${`Confirm revoke key ${item.key_id}`}
          onClick=${() => act('revoke', {})}>Confirm revoke</button>
        <button type="button" class="secondary" onClick=${() => setAsking(null)}>Cancel</button>`}
      ${asking === 'rotate' &&
      html`<form class="inline" aria-label=${`Rotate key ${item.key_id}`}
          onSubmit=${(event) => {
            event.preventDefault();
            act('rotate', { grace_seconds: Number(grace) });
          }}>
          <label for=${id}>Old key works for (seconds)</label>
          <input id=${id} type="number" min="0" max="2592000" required value=${grace}
            onInput=${(e) => setGrace(e.currentTarget.value)} />
          <button type="submit" aria-label=${`Confirm rotate key ${item.key_id}`}>Confirm rotate</button>
          <button type="button" class="secondary" onClick=${() => setAsking(null)}>Cancel</button>
        </form>`}
      <${ErrorLine} error=${error} />
    </td>
  </tr>`;
}

export function Keys() {
  const [keys, setKeys] = useState(null);
  const [error, setError] = useState(null);
  const [issued, setIssued] = useState(null);
  const [tick, setTick] = useState(0);
  const reload = () => setTick((n) => n + 1);
  useEffect(() => {
    call('/v1/admin/keys')
      .then((answer) => setKeys(answer.body.keys))
      .catch((failure) => setError(`Keys could not be listed: ${failure.message}`));
  }, [tick]);
  if (error) return html`<${ErrorLine} error=${error} />`;
  const issue = (body) => {
    setIssued(body);
    reload();
  };
  return html`<${CreateKey} onIssued=${issue} />
    <${Secret} issued=${issued} />
    <section aria-labelledby="list-heading">
      <h2 id="list-heading">Keys</h2>
      <${TableBox} label="Keys table">
        <table>
          <thead><tr><th scope="col">Key id</th><th scope="col">Tenant</th><th scope="col">Scopes</th>
            <th scope="col">Plan</th><th scope="col">Created (UTC)</th><th scope="col">State</th>
            <th scope="col">Description</th><th scope="col">Actions</th></tr></thead>
          <tbody>
            ${keys === null
              ? html`<tr><td colspan="8">Loading…</td></tr>`
              : keys.map((item) => html`<${KeyRow} key=${item.key_id} item=${item} onChanged=${reload} onIssued=${issue} />`)}
          </tbody>
        </table>
      </${TableBox}>
    </section>`;
}
