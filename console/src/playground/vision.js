// Vision: upload an image, its top 5 labels with their scores.
import { useEffect, useRef, useState } from 'preact/hooks';
import { call, curl } from '../api.js';
import { html } from '../html.js';
import { Curl, ErrorLine, Timing, useSubmit } from '../widgets.js';
import { ModelSelect, useFocusHandover } from './shared.js';

export function VisionPlayground({ models }) {
  const [model, setModel] = useState(models[0].id);
  const [file, setFile] = useState(null);
  const [preview, setPreview] = useState(null);
  const [result, setResult] = useState(null);
  const classify = async () => {
    const form = new FormData();
    form.append('model', model);
    form.append('top_k', '5');
    form.append('images', file, file.name);
    const answer = await call('/v1/vision/classify', { method: 'POST', form });
    const command = curl('/v1/vision/classify', {
      method: 'POST',
      fields: [['model', model], ['top_k', '5'], ['images', `@${file.name}`]],
    });
    setResult({ labels: answer.body.outputs[0], ms: answer.ms, usage: answer.body.usage, command });
  };
  const { busy, error, submit } = useSubmit(
    classify,
    (failure) => `Classification failed: ${failure.message}`,
    () => (file ? null : 'Choose an image first.'),
  );
  const submitButton = useRef(null);
  useFocusHandover(busy, { whenIdle: submitButton });
  useEffect(() => {
    if (!file) return undefined;
    const url = URL.createObjectURL(file);
    setPreview(url);
    return () => URL.revokeObjectURL(url);
  }, [file]);
  return html`<section aria-labelledby="vision-heading" class="card">
    <h2 id="vision-heading">Vision: classify an image</h2>
    <form onSubmit=${submit}>
      <${ModelSelect} id="vision-model" models=${models} value=${model} onChange=${setModel} />
      <label>Image <input type="file" accept="image/*" onChange=${(e) => setFile(e.currentTarget.files[0] || null)} /></label>
      ${preview && html`<img class="preview" src=${preview} alt="The chosen image" />`}
      <button type="submit" ref=${submitButton} disabled=${busy}>Classify</button>
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
