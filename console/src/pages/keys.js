// API keys (admin keys only): create (the secret shown once), list, revoke, through /v1/admin/keys.
import { useEffect, useState } from 'preact/hooks';
import { call } from '../api.js';
import { html } from '../html.js';
import { CopyButton, ErrorLine } from '../widgets.js';

function CreateKey({ onCreated }) {
  const [tenant, setTenant] = useState('');
  const [plan, setPlan] = useState('default');
  const [description, setDescription] = useState('');
  const [admin, setAdmin] = useState(false);
  const [issued, setIssued] = useState(null);
  const [error, setError] = useState(null);
  const submit = async (event) => {
    event.preventDefault();
    setError(null);
    const json = { tenant: tenant.trim(), plan: plan.trim(), description, scopes: admin ? ['invoke', 'admin'] : ['invoke'] };
    try {
      const answer = await call('/v1/admin/keys', { method: 'POST', json });
      setIssued(answer.body);
      onCreated();
    } catch (failure) {
      setError(`The key was not created: ${failure.message}`);
    }
  };
  return html`<section aria-labelledby="create-heading">
    <h2 id="create-heading">Create a key</h2>
    <form class="controls" onSubmit=${submit}>
      <label>Tenant <input name="tenant" required value=${tenant} onInput=${(e) => setTenant(e.currentTarget.value)} /></label>
      <label>Plan <input name="plan" required value=${plan} onInput=${(e) => setPlan(e.currentTarget.value)} /></label>
      <label>Description <input name="description" value=${description}
        onInput=${(e) => setDescription(e.currentTarget.value)} /></label>
      <label class="check"><input type="checkbox" checked=${admin} onChange=${(e) => setAdmin(e.currentTarget.checked)} />
        Admin scope</label>
      <button type="submit">Create key</button>
    </form>
    <${ErrorLine} error=${error} />
    ${issued &&
    html`<div class="secret" role="status">
      <p>Key <strong>${issued.key.key_id}</strong> for tenant <strong>${issued.key.tenant}</strong> was created.
        Copy its secret now: it is shown this once.</p>
      <div class="row"><code data-testid="new-secret">${issued.api_key}</code><${CopyButton} text=${issued.api_key} label="Copy key" /></div>
    </div>`}
  </section>`;
}

function KeyRow({ item, onChanged }) {
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState(null);
  const revoke = async () => {
    try {
      await call(`/v1/admin/keys/${encodeURIComponent(item.key_id)}/revoke`, { method: 'POST', json: {} });
      onChanged();
    } catch (failure) {
      setError(failure.message);
    } finally {
      setConfirming(false);
    }
  };
  const state = item.active ? 'active' : item.revoked_at ? 'revoked' : 'expired';
  return html`<tr data-key=${item.key_id}>
    <th scope="row"><code>${item.key_id}</code></th>
    <td>${item.tenant}</td><td>${item.scopes.join(', ')}</td><td>${item.plan}</td>
    <td>${item.created_at.slice(0, 16).replace('T', ' ')}</td><td data-testid="key-state">${state}</td>
    <td>${item.description}</td>
    <td>
      ${item.active && !confirming &&
      html`<button type="button" class="secondary" aria-label=${`Revoke key ${item.key_id}`}
        onClick=${() => setConfirming(true)}>Revoke</button>`}
      ${confirming &&
      html`<button type="button" class="danger" aria-label=${`Confirm revoke key ${item.key_id}`} onClick=${revoke}>
        Confirm revoke</button>
        <button type="button" class="secondary" onClick=${() => setConfirming(false)}>Cancel</button>`}
      <${ErrorLine} error=${error} />
    </td>
  </tr>`;
}

export function Keys() {
  const [keys, setKeys] = useState(null);
  const [error, setError] = useState(null);
  const [tick, setTick] = useState(0);
  const reload = () => setTick((n) => n + 1);
  useEffect(() => {
    call('/v1/admin/keys')
      .then((answer) => setKeys(answer.body.keys))
      .catch((failure) => setError(`Keys could not be listed: ${failure.message}`));
  }, [tick]);
  if (error) return html`<${ErrorLine} error=${error} />`;
  return html`<${CreateKey} onCreated=${reload} />
    <section aria-labelledby="list-heading">
      <h2 id="list-heading">Keys</h2>
      <div class="table">
        <table>
          <thead><tr><th scope="col">Key id</th><th scope="col">Tenant</th><th scope="col">Scopes</th>
            <th scope="col">Plan</th><th scope="col">Created (UTC)</th><th scope="col">State</th>
            <th scope="col">Description</th><th scope="col">Actions</th></tr></thead>
          <tbody>
            ${keys === null
              ? html`<tr><td colspan="8">Loading…</td></tr>`
              : keys.map((item) => html`<${KeyRow} key=${item.key_id} item=${item} onChanged=${reload} />`)}
          </tbody>
        </table>
      </div>
    </section>`;
}
