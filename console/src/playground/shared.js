// What every playground repeats: the model picker, and the usage of an answer as the Timing widget shows it.
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
