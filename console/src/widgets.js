// Small pieces every page uses: an error line, a copyable block, the latency and usage of an answer, a loader,
// a form's submission.
import { useCallback, useEffect, useState } from 'preact/hooks';
import { call, listModels } from './api.js';
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

// A form that sends one request: submit() runs `action` (async) with the form busy, and shows the failure it
// throws as `refused(failure)` words it. `lacking`, when given, names what the form still needs (a file not yet
// chosen): its message is shown and nothing is sent, the form never busy.
export function useSubmit(action, refused, lacking = () => null) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const submit = async (event) => {
    event.preventDefault();
    const missing = lacking();
    if (missing) {
      setError(missing);
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (failure) {
      setError(refused(failure));
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, submit };
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

// One GET of the public API, again whenever reload() is called or a dependency changes: the answer's body, the
// ApiError that stopped it (its status tells a refusal from a failure), and whether it is on its way.
export function useGet(path, deps = []) {
  const [state, setState] = useState({ body: null, error: null, loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let current = true;
    setState((was) => ({ ...was, loading: true }));
    call(path)
      .then((answer) => current && setState({ body: answer.body, error: null, loading: false }))
      .catch((error) => current && setState({ body: null, error, loading: false }));
    return () => {
      current = false;
    };
  }, [path, tick, ...deps]);
  const reload = useCallback(() => setTick((n) => n + 1), []);
  return { ...state, reload };
}

// A time as the API gives it (unix seconds or ISO 8601), shown in UTC to the minute; '' for none.
export function when(value) {
  if (value === null || value === undefined || value === '') return '';
  const date = typeof value === 'number' ? new Date(value * 1000) : new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toISOString().slice(0, 16).replace('T', ' ');
}

// What an action answered, for the screen reader too: a status line, or the API's refusal as an alert.
// The status region is always there, so that what appears in it is read out.
export function Outcome({ done, error }) {
  return html`<div class="outcome" role="status">
    ${error ? html`<${ErrorLine} error=${error} />` : done ? html`<p class="done">${done}</p>` : null}
  </div>`;
}

// A table's box, scrolled sideways on a narrow screen: a keyboard user can focus it to scroll it, and a screen
// reader names it.
export function TableBox({ label, children }) {
  return html`<div class="table" tabindex="0" role="region" aria-label=${label}>${children}</div>`;
}
