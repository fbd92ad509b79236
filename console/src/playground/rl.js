// rl: a CartPole episode simulated here (cartpole.js), the policy asked for each step's action through
// POST /v1/rl/act, drawn on a canvas with the same state written out as text.
import { useEffect, useRef, useState } from 'preact/hooks';
import { call, curl } from '../api.js';
import { html } from '../html.js';
import { Curl, ErrorLine } from '../widgets.js';
import { draw, ended, MAX_STEPS, reset, step, TAU } from './cartpole.js';
import { ModelSelect, useFocusHandover } from './shared.js';

const PATH = '/v1/rl/act';
const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const degrees = (radians) => (radians * 180) / Math.PI;

function describe(state) {
  const [x, , theta] = state;
  return `cart at ${x.toFixed(2)} m, pole at ${degrees(theta).toFixed(1)}°`;
}

export function RlPlayground({ models }) {
  const [model, setModel] = useState(models[0].id);
  const [limit, setLimit] = useState(MAX_STEPS);
  const [paced, setPaced] = useState(true);
  const [running, setRunning] = useState(false);
  const [progress, setProgress] = useState(null); // { steps, state }
  const [result, setResult] = useState(null); // { steps, why, meanMs, calls, command }
  const [error, setError] = useState(null);
  const canvas = useRef(null);
  const startButton = useRef(null);
  const stopButton = useRef(null);
  useFocusHandover(running, { whenIdle: startButton, whileBusy: stopButton });
  const stopped = useRef(false);
  const pace = useRef(paced); // read at each step: the box may be ticked while an episode runs
  pace.current = paced;
  useEffect(() => {
    draw(canvas.current, [0, 0, 0, 0]); // the cart at rest, the pole upright, before any episode
    return () => {
      stopped.current = true; // an episode left running stops when the page goes
    };
  }, []);

  const play = async (event) => {
    event.preventDefault();
    stopped.current = false;
    setRunning(true);
    setError(null);
    setResult(null);
    let state = reset();
    let steps = 0;
    let spent = 0;
    let json = null;
    let why = null;
    draw(canvas.current, state);
    setProgress({ steps, state });
    try {
      while (why === null) {
        const began = performance.now();
        json = { model, observations: [state], deterministic: true };
        const answer = await call(PATH, { method: 'POST', json });
        spent += answer.ms;
        state = step(state, answer.body.outputs.actions[0]);
        steps += 1;
        if (canvas.current) draw(canvas.current, state);
        setProgress({ steps, state });
        why = ended(state) || (steps >= limit ? `reached the limit of ${limit} steps` : null);
        if (why === null && stopped.current) why = 'stopped';
        // At 50 steps a second the episode plays as fast as the simulated pole moves, and a person can follow it.
        if (why === null && pace.current) await wait(TAU * 1000 - (performance.now() - began));
      }
    } catch (failure) {
      setError(`The policy's step failed: ${failure.message}`);
    }
    if (why !== null) {
      const command = curl(PATH, { method: 'POST', json });
      setResult({ steps, why, meanMs: spent / steps, command });
    }
    setRunning(false);
  };

  return html`<section aria-labelledby="rl-heading" class="card">
    <h2 id="rl-heading">rl: balance a CartPole</h2>
    <form onSubmit=${play}>
      <${ModelSelect} id="rl-model" models=${models} value=${model} onChange=${setModel} />
      <label>Step limit
        <input type="number" min="1" max=${MAX_STEPS} required value=${limit} disabled=${running}
          onInput=${(e) => setLimit(Math.max(1, Math.min(MAX_STEPS, Number(e.currentTarget.value) || 1)))} />
      </label>
      <label class="check">
        <input type="checkbox" checked=${paced} onChange=${(e) => setPaced(e.currentTarget.checked)} />
        Play at real time (50 steps a second)
      </label>
      <div class="row play">
        <button type="submit" ref=${startButton} disabled=${running}>Start episode</button>
        <button type="button" class="secondary" ref=${stopButton} disabled=${!running} onClick=${() => (stopped.current = true)}>
          Stop episode
        </button>
      </div>
    </form>
    <canvas ref=${canvas} class="cartpole" width="600" height="240" role="img"
      aria-label="The cart on its track and the pole it balances; the step and state are written below"></canvas>
    <p data-testid="episode-progress">
      ${progress ? `Step ${progress.steps}: ${describe(progress.state)}` : 'Press Start episode to play one.'}
    </p>
    <${ErrorLine} error=${error} />
    <div aria-live="polite">
      ${running && html`<p>Episode running…</p>`}
      ${result &&
      html`<p class="answer">Survived <strong data-testid="steps-survived">${result.steps}</strong> steps: ${result.why}.</p>
        <p class="timing" data-testid="timing">
          Mean latency <strong>${Math.round(result.meanMs)} ms</strong> a step; usage <strong>${result.steps} observations</strong>
        </p>
        <${Curl} command=${result.command} />`}
    </div>
  </section>`;
}
