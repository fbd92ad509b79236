// Try the models: each served model goes to the playground of its domain and task (its V2 metadata), one
// section per playground that has a model. Each answer shows the request as curl, its latency and its usage.
import { html } from '../html.js';
import { ChatPlayground } from '../playground/chat.js';
import { RlPlayground } from '../playground/rl.js';
import { SpeechPlayground } from '../playground/speech.js';
import { TextPlayground } from '../playground/text.js';
import { VisionPlayground } from '../playground/vision.js';
import { useModels } from '../widgets.js';

// In the page's order; `fits` reads a model's V2 parameters ({domain, task}). A speech model that transcribes
// is offered before one that spots keywords: both answer the transcription route.
const PLAYGROUNDS = [
  { name: 'text', what: 'text embedding', Playground: TextPlayground, fits: ({ task }) => task === 'embedding' },
  { name: 'vision', what: 'vision', Playground: VisionPlayground, fits: ({ domain }) => domain === 'vision' },
  { name: 'speech', what: 'speech', Playground: SpeechPlayground, fits: ({ domain }) => domain === 'speech', first: 'transcription' },
  { name: 'rl', what: 'rl policy', Playground: RlPlayground, fits: ({ domain }) => domain === 'rl' },
  { name: 'chat', what: 'chat', Playground: ChatPlayground, fits: ({ domain }) => domain === 'llm' },
];

function modelsFor({ fits, first }, models) {
  const fitting = models.filter((model) => fits(model.meta?.parameters || {}));
  return first ? [...fitting].sort((a, b) => (b.meta.parameters.task === first) - (a.meta.parameters.task === first)) : fitting;
}

export function Playground() {
  const { models, pending } = useModels();
  if (pending) return pending;
  return html`<div class="playground">
    ${PLAYGROUNDS.map((playground) => {
      const fitting = modelsFor(playground, models);
      return fitting.length
        ? html`<${playground.Playground} key=${playground.name} models=${fitting} />`
        : html`<p key=${playground.name}>No ${playground.what} model is served here.</p>`;
    })}
  </div>`;
}
