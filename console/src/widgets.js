// Small pieces every page uses: an error line, a copyable block, the latency and usage of an answer.
import { useState } from 'preact/hooks';
import { html } from './html.js';

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
