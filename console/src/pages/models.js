// Every model under this base URL (GET /v1/models) with its V2 metadata: domain, task, versions, tensors.
import { html } from '../html.js';
import { useModels } from '../widgets.js';

const tensors = (list) => (list || []).map((t) => `${t.name} ${t.datatype} [${t.shape.join(', ')}]`).join('; ');

export function Models() {
  const { models, pending } = useModels();
  if (pending) return pending;
  return html`<div class="table">
    <table>
      <caption>${models.length} model(s)</caption>
      <thead><tr><th scope="col">Model</th><th scope="col">Domain</th><th scope="col">Task</th>
        <th scope="col">Serving version</th><th scope="col">Versions</th><th scope="col">Inputs</th>
        <th scope="col">Outputs</th></tr></thead>
      <tbody>
        ${models.map((model) => {
          const meta = model.meta || {};
          const params = meta.parameters || {};
          return html`<tr>
            <th scope="row">${model.id}</th>
            <td>${params.domain ?? ''}</td>
            <td>${params.task ?? ''}</td>
            <td>${params.serving_version ?? ''}</td>
            <td>${(meta.versions || []).join(', ')}</td>
            <td>${model.error ? model.error : tensors(meta.inputs)}</td>
            <td>${tensors(meta.outputs)}</td>
          </tr>`;
        })}
      </tbody>
    </table>
  </div>`;
}
