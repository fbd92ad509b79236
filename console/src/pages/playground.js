// Try the models: text (embed two sentences, their cosine similarity) and vision (an image's top 5 labels).
// Each answer shows the request as curl, its latency and its usage.
import { useEffect, useState } from 'preact/hooks';
import { call, curl } from '../api.js';
import { html } from '../html.js';
import { Curl, ErrorLine, Timing, useModels } from '../widgets.js';

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

function ModelSelect({ id, models, value, onChange }) {
  return html`<label>Model
    <select id=${id} value=${value} onChange=${(event) => onChange(event.currentTarget.value)}>
      ${models.map((model) => html`<option value=${model.id}>${model.id}</option>`)}
    </select>
  </label>`;
}

function TextPlayground({ models }) {
  const [model, setModel] = useState(models[0].id);
  const [first, setFirst] = useState('A cat sits on the mat.');
  const [second, setSecond] = useState('A kitten rests on a rug.');
  const [result, setResult] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const json = { model, input: [first, second] };
  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const answer = await call('/v1/embeddings', { method: 'POST', json });
      const [a, b] = answer.body.data.map((item) => item.embedding);
      setResult({ similarity: cosine(a, b), ms: answer.ms, usage: answer.body.usage, command: curl('/v1/embeddings', { method: 'POST', json }) });
    } catch (failure) {
      setError(`Embedding failed: ${failure.message}`);
    } finally {
      setBusy(false);
    }
  };
  return html`<section aria-labelledby="text-heading" class="card">
    <h2 id="text-heading">Text: sentence similarity</h2>
    <form onSubmit=${submit}>
      <${ModelSelect} id="text-model" models=${models} value=${model} onChange=${setModel} />
      <label>First sentence <textarea rows="2" value=${first} onInput=${(e) => setFirst(e.currentTarget.value)} /></label>
      <label>Second sentence <textarea rows="2" value=${second} onInput=${(e) => setSecond(e.currentTarget.value)} /></label>
      <button type="submit" disabled=${busy}>Compare</button>
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

function VisionPlayground({ models }) {
  const [model, setModel] = useState(models[0].id);
  const [file, setFile] = useState(null);
  const [preview, setPreview] = useState(null);
  const [result, setResult] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    if (!file) return undefined;
    const url = URL.createObjectURL(file);
    setPreview(url);
    return () => URL.revokeObjectURL(url);
  }, [file]);
  const submit = async (event) => {
    event.preventDefault();
    if (!file) {
      setError('Choose an image first.');
      return;
    }
    setBusy(true);
    setError(null);
    const form = new FormData();
    form.append('model', model);
    form.append('top_k', '5');
    form.append('images', file, file.name);
    try {
      const answer = await call('/v1/vision/classify', { method: 'POST', form });
      const command = curl('/v1/vision/classify', {
        method: 'POST',
        fields: [['model', model], ['top_k', '5'], ['images', `@${file.name}`]],
      });
      setResult({ labels: answer.body.outputs[0], ms: answer.ms, usage: answer.body.usage, command });
    } catch (failure) {
      setError(`Classification failed: ${failure.message}`);
    } finally {
      setBusy(false);
    }
  };
  return html`<section aria-labelledby="vision-heading" class="card">
    <h2 id="vision-heading">Vision: classify an image</h2>
    <form onSubmit=${submit}>
      <${ModelSelect} id="vision-model" models=${models} value=${model} onChange=${setModel} />
      <label>Image <input type="file" accept="image/*" onChange=${(e) => setFile(e.currentTarget.files[0] || null)} /></label>
      ${preview && html`<img class="preview" src=${preview} alt="The chosen image" />`}
      <button type="submit" disabled=${busy}>Classify</button>
    </form>
    <${ErrorLine} error=${error} />
    ${result &&
    html`<div aria-live="polite">
      <table class="labels">
        <caption>Top ${result.labels.length}</caption>
        <thead><tr><th scope="col">Label</th><th scope="col">Score</th></tr></thead>
        <tbody>
          ${result.labels.map((item) => html`<tr><td>${item.label}</td><td>${item.score.toFixed(4)}</td></tr>`)}
        </tbody>
      </table>
      <${Timing} ms=${result.ms} usage=${result.usage} />
      <${Curl} command=${result.command} />
    </div>`}
  </section>`;
}

export function Playground() {
  const { models, pending } = useModels();
  if (pending) return pending;
  const of = (task) => models.filter((model) => model.meta?.parameters?.task === task);
  const text = of('embedding');
  const vision = models.filter((model) => model.meta?.parameters?.domain === 'vision');
  return html`<div class="playground">
    ${text.length ? html`<${TextPlayground} models=${text} />` : html`<p>No text embedding model is served here.</p>`}
    ${vision.length ? html`<${VisionPlayground} models=${vision} />` : html`<p>No vision model is served here.</p>`}
  </div>`;
}
