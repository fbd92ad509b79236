// Text: embed two sentences in one request and show their cosine similarity.
import { useRef, useState } from 'preact/hooks';
import { call, curl } from '../api.js';
import { html } from '../html.js';
import { Curl, ErrorLine, Timing, useSubmit } from '../widgets.js';
import { ModelSelect, useFocusHandover } from './shared.js';

function cosine(a, b) {
  let dot = 0;
  let aa = 0;
  let bb = 0;
  for (let n = 0; n < a.length; n += 1) {
    dot += a[n] * b[n];
    aa += a[n] * a[n];
    bb += b[n] * b[n];
  }
  return dot / Math.sqrt(aa * bb);
}

export function TextPlayground({ models }) {
  const [model, setModel] = useState(models[0].id);
  const [first, setFirst] = useState('A cat sits on the mat.');
  const [second, setSecond] = useState('A kitten rests on a rug.');
  const [result, setResult] = useState(null);
  const json = { model, input: [first, second] };
  const compare = async () => {
    const answer = await call('/v1/embeddings', { method: 'POST', json });
    const [a, b] = answer.body.data.map((item) => item.embedding);
    setResult({ similarity: cosine(a, b), ms: answer.ms, usage: answer.body.usage, command: curl('/v1/embeddings', { method: 'POST', json }) });
  };
  const { busy, error, submit } = useSubmit(compare, (failure) => `Embedding failed: ${failure.message}`);
  const submitButton = useRef(null);
  useFocusHandover(busy, { whenIdle: submitButton });
  return html`<section aria-labelledby="text-heading" class="card">
    <h2 id="text-heading">Text: sentence similarity</h2>
    <form onSubmit=${submit}>
      <${ModelSelect} id="text-model" models=${models} value=${model} onChange=${setModel} />
      <label>First sentence <textarea rows="2" value=${first} onInput=${(e) => setFirst(e.currentTarget.value)} /></label>
      <label>Second sentence <textarea rows="2" value=${second} onInput=${(e) => setSecond(e.currentTarget.value)} /></label>
      <button type="submit" ref=${submitButton} disabled=${busy}>Compare</button>
    </form>
    <${ErrorLine} error=${error} />
    ${result &&
    html`<div aria-live="polite">
      <p class="answer">Cosine similarity <strong data-testid="similarity">${result.similarity.toFixed(4)}</strong></p>
      <${Timing} ms=${result.ms} usage=${result.usage} />
      <${Curl} command=${result.command} />
    </div>`}
  </section>`;
}
