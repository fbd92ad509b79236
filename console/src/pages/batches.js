// Batches (OpenAI's Batch API, /v1/batches): the tenant's batches with their status and counts, one in full, cancel;
// a new one from a JSONL file uploaded here (/v1/files, purpose "batch"), one request per line.
import { useState } from 'preact/hooks';
import { ApiError, base, call, session } from '../api.js';
import { html } from '../html.js';
import { ErrorLine, Outcome, TableBox, useGet, useSubmit, when } from '../widgets.js';

// Statuses that may still be cancelled (the API answers the batch unchanged for the others).
const RUNNING = new Set(['validating', 'in_progress']);
const ENDPOINTS = ['/v1/embeddings', '/v1/vision/classify', '/v1/audio/transcriptions', '/v1/chat/completions'];
const STAMPS = ['created_at', 'in_progress_at', 'finalizing_at', 'completed_at', 'failed_at', 'expired_at',
  'cancelling_at', 'cancelled_at', 'expires_at'];

const counts = (batch) => {
  const c = batch.request_counts;
  return `${c.completed} done, ${c.failed} failed of ${c.total}`;
};

// A file's content (output or errors) saved by the browser: fetched with the key, never a link carrying it.
async function save(fileId) {
  const response = await fetch(`${base}/v1/files/${encodeURIComponent(fileId)}/content`, {
    headers: { Authorization: `Bearer ${session.key()}` },
  });
  if (!response.ok) throw new ApiError(response.status, `the file could not be read (${response.status})`);
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement('a');
  link.href = url;
  link.download = `${fileId}.jsonl`;
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function CreateBatch({ onCreated }) {
  const [file, setFile] = useState(null);
  const [endpoint, setEndpoint] = useState(ENDPOINTS[0]);
  const [note, setNote] = useState('');
  const [done, setDone] = useState(null);
  const create = async () => {
    setDone(null);
    const form = new FormData();
    form.append('purpose', 'batch');
    form.append('file', file);
    const uploaded = await call('/v1/files', { method: 'POST', form });
    const json = { input_file_id: uploaded.body.id, endpoint, completion_window: '24h' };
    if (note.trim()) json.metadata = { description: note.trim() };
    const made = await call('/v1/batches', { method: 'POST', json });
    setDone(`Batch ${made.body.id} was created (${made.body.status}).`);
    onCreated(made.body.id);
  };
  const { busy, error, submit } = useSubmit(create, (failure) => `The batch was not created: ${failure.message}`);
  return html`<section aria-labelledby="create-batch-heading">
    <h2 id="create-batch-heading">Create a batch</h2>
    <form class="controls" onSubmit=${submit}>
      <label>Requests (JSONL)
        <input type="file" accept=".jsonl,.json,.gz,application/jsonl" required
          onChange=${(e) => setFile(e.currentTarget.files[0] || null)} /></label>
      <label>Endpoint
        <input list="batch-endpoints" required value=${endpoint} onInput=${(e) => setEndpoint(e.currentTarget.value)} /></label>
      <datalist id="batch-endpoints">${ENDPOINTS.map((each) => html`<option value=${each} />`)}</datalist>
      <label>Description <input value=${note} maxlength="512" onInput=${(e) => setNote(e.currentTarget.value)} /></label>
      <button type="submit" disabled=${busy || !file}>${busy ? 'Creating…' : 'Create batch'}</button>
    </form>
    <p class="hint">One request body per line, as OpenAI's Batch API takes them: {"custom_id", "method", "url", "body"}.</p>
    <${Outcome} done=${done} error=${error} />
  </section>`;
}

function BatchDetail({ id, onChanged }) {
  const batch = useGet(`/v1/batches/${encodeURIComponent(id)}`);
  const [done, setDone] = useState(null);
  const [error, setError] = useState(null);
  if (batch.error) return html`<${ErrorLine} error=${`Batch ${id} could not be read: ${batch.error.message}`} />`;
  if (!batch.body) return html`<p aria-busy="true">Loading…</p>`;
  const b = batch.body;
  const cancel = async () => {
    setError(null);
    try {
      const answer = await call(`/v1/batches/${encodeURIComponent(id)}/cancel`, { method: 'POST', json: {} });
      setDone(`Batch ${id} is ${answer.body.status}.`);
      batch.reload();
      onChanged();
    } catch (failure) {
      setError(`The batch was not cancelled: ${failure.message}`);
    }
  };
  const download = (fileId) => save(fileId).catch((failure) => setError(failure.message));
  return html`<dl class="facts">
      <div><dt>Status</dt><dd data-testid="batch-status">${b.status}</dd></div>
      <div><dt>Requests</dt><dd>${counts(b)}</dd></div>
      <div><dt>Endpoint</dt><dd><code>${b.endpoint}</code></dd></div>
      <div><dt>Input file</dt><dd><code>${b.input_file_id}</code></dd></div>
      ${STAMPS.filter((name) => b[name]).map(
        (name) => html`<div><dt>${name.replace(/_at$/, '').replace('_', ' ')}</dt><dd>${when(b[name])}</dd></div>`,
      )}
      ${Object.entries(b.metadata || {}).map(([name, value]) => html`<div><dt>${name}</dt><dd>${value}</dd></div>`)}
    </dl>
    ${b.errors &&
    html`<ul class="errors">${b.errors.data.map(
      (e) => html`<li><code>${e.code}</code>${e.line ? ` (line ${e.line})` : ''}: ${e.message}</li>`,
    )}</ul>`}
    <div class="row start">
      ${RUNNING.has(b.status) && html`<button type="button" class="danger" onClick=${cancel}>Cancel batch</button>`}
      ${b.output_file_id &&
      html`<button type="button" class="secondary" onClick=${() => download(b.output_file_id)}>Download output</button>`}
      ${b.error_file_id &&
      html`<button type="button" class="secondary" onClick=${() => download(b.error_file_id)}>Download errors</button>`}
      <button type="button" class="secondary" onClick=${batch.reload}>Refresh</button>
    </div>
    <${Outcome} done=${done} error=${error} />`;
}

export function Batches() {
  const list = useGet('/v1/batches?limit=100');
  const [open, setOpen] = useState(null);
  if (list.error) return html`<${ErrorLine} error=${`Batches could not be listed: ${list.error.message}`} />`;
  const batches = list.body ? list.body.data : null;
  const created = (id) => {
    setOpen(id);
    list.reload();
  };
  return html`<${CreateBatch} onCreated=${created} />
    <section aria-labelledby="batches-heading">
      <h2 id="batches-heading">Your batches</h2>
      <${TableBox} label="Batches">
        <table>
          <thead><tr><th scope="col">Batch</th><th scope="col">Endpoint</th><th scope="col">Status</th>
            <th scope="col">Requests</th><th scope="col">Created (UTC)</th><th scope="col">Details</th></tr></thead>
          <tbody>
            ${batches === null
              ? html`<tr><td colspan="6">Loading…</td></tr>`
              : batches.length === 0
                ? html`<tr><td colspan="6">No batches yet.</td></tr>`
                : batches.map(
                    (b) => html`<tr data-batch=${b.id}>
                      <th scope="row"><code>${b.id}</code></th><td><code>${b.endpoint}</code></td>
                      <td data-testid="batch-row-status">${b.status}</td><td>${counts(b)}</td><td>${when(b.created_at)}</td>
                      <td><button type="button" class="secondary" aria-expanded=${open === b.id}
                        aria-controls="batch-detail" aria-label=${`Details of batch ${b.id}`}
                        onClick=${() => setOpen(open === b.id ? null : b.id)}>Details</button></td>
                    </tr>`,
                  )}
          </tbody>
        </table>
      </${TableBox}>
    </section>
    ${open &&
    html`<section id="batch-detail" aria-labelledby="batch-detail-heading">
      <h2 id="batch-detail-heading">Batch ${open}</h2>
      <${BatchDetail} key=${open} id=${open} onChanged=${list.reload} />
    </section>`}`;
}
