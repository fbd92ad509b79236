// What every playground repeats: the model picker, the usage of an answer as the Timing widget shows it, and
// the keyboard's place kept while a request runs.
import { useEffect, useRef } from 'preact/hooks';
import { html } from '../html.js';

export function ModelSelect({ id, models, value, onChange }) {
  return html`<label>Model
    <select id=${id} value=${value} onChange=${(event) => onChange(event.currentTarget.value)}>
      ${models.map((model) => html`<option value=${model.id}>${model.id}</option>`)}
    </select>
  </label>`;
}

// The counted units of a usage object: a transcription's {"type": "duration", "seconds": 5} is "5 seconds",
// not "duration type".
export function counted(usage) {
  return Object.fromEntries(Object.entries(usage || {}).filter(([, value]) => typeof value === 'number'));
}

// Keeps the keyboard's place when a run disables the button that started it: focus that fell to the page
// (the pressed button went disabled) moves to `whileBusy` (a Stop button) as a run starts, and back to
// `whenIdle` as it ends. Focus the user put elsewhere stays where it is.
export function useFocusHandover(busy, { whenIdle, whileBusy }) {
  const before = useRef(busy);
  useEffect(() => {
    if (before.current === busy) return;
    before.current = busy;
    const target = (busy ? whileBusy : whenIdle)?.current;
    const lost = !document.activeElement || document.activeElement === document.body;
    if (target && !target.disabled && lost) target.focus();
  }, [busy]);
}
