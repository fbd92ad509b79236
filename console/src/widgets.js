// Small pieces every page uses: an error line, a copyable block, the latency and usage of an answer.
import { useEffect, useState } from 'preact/hooks';
import { listModels } from './api.js';
import { html } from './html.js';

// The models under this base URL (GET /v1/models), for the pages that list or try them: the list, the error
// that stopped it, and what to show meanwhile (null once the list is there).
export function useModels() {
  const [models, setModels] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    listModels()
      .then(setModels)
      .catch((failure) => setError(`Models could not be listed: ${failure.message}`));
  }, []);
  const pending = error
    ? html`<${ErrorLine} error=${error} />`
    : models
      ? null
      : html`<p aria-busy="true">Loading…</p>`;
  return { models, pending };
}

export function ErrorLine({ error }) {
  if (!error) return null;
  return html`<p class="error" role="alert">${error}</p>`;
}

export function CopyButton({ text, label = 'Copy' }) {
  const [done, setDone] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setDone(true);
    } catch {
      setDone(false);
    }
  };
  return html`<button type="button" class="secondary" onClick=${copy}>${done ? 'Copied' : label}</button>`;
}

export function Curl({ command }) {
  return html`<div class="curl">
    <div class="row"><span class="caption">Request as curl</span><${CopyButton} text=${command} label="Copy curl" /></div>
    <pre><code>${command}</code></pre>
  </div>`;
}

export function Timing({ ms, usage }) {
  const spent = Object.entries(usage || {})
    .map(([name, value]) => `${value} ${name}`)
    .join(', ');
  return html`<p class="timing" data-testid="timing">
    Latency <strong>${Math.round(ms)} ms</strong>${spent ? html`; usage <strong>${spent}</strong>` : ''}
  </p>`;
}
