// Chat: one prompt to a chat model through POST /v1/chat/completions with "stream": true, the answer shown
// as its tokens arrive (server-sent events read from fetch's body), then its latency and token usage.
import { useEffect, useRef, useState } from 'preact/hooks';
import { curl, stream } from '../api.js';
import { html } from '../html.js';
import { Curl, ErrorLine, Timing, useSubmit } from '../widgets.js';
import { ModelSelect, useFocusHandover } from './shared.js';

const PATH = '/v1/chat/completions';

export function ChatPlayground({ models }) {
  const [model, setModel] = useState(models[0].id);
  const [prompt, setPrompt] = useState('What is the capital of France?');
  const [maxTokens, setMaxTokens] = useState(64);
  // Greedy by default: at OpenAI's default temperature (1) a model as small as the shipped one often wanders
  // from the question, and a first try should show what it knows.
  const [temperature, setTemperature] = useState(0);
  const [answer, setAnswer] = useState('');
  const [result, setResult] = useState(null);
  const aborter = useRef(null);
  useEffect(() => () => aborter.current?.abort(), []);

  const send = async () => {
    const json = {
      model,
      messages: [{ role: 'user', content: prompt }],
      max_tokens: maxTokens,
      temperature,
      stream: true,
      stream_options: { include_usage: true },
    };
    aborter.current = new AbortController();
    setResult(null);
    setAnswer('');
    let text = '';
    let usage = null;
    let firstMs = null;
    const started = performance.now();
    const done = await stream(PATH, {
      json,
      signal: aborter.current.signal,
      onEvent: (chunk) => {
        const delta = chunk.choices?.[0]?.delta?.content;
        if (delta) {
          if (firstMs === null) firstMs = performance.now() - started;
          text += delta;
          setAnswer(text);
        }
        if (chunk.usage) {
          const { prompt_tokens: prompt, completion_tokens: completion } = chunk.usage;
          usage = { 'prompt tokens': prompt, 'completion tokens': completion };
        }
      },
    });
    setResult({ ms: done.ms, firstMs, usage, command: curl(PATH, { method: 'POST', json, stream: true }) });
  };
  // Stopped by the Stop button (an abort), the answer streamed so far stays on the page.
  const { busy, error, submit } = useSubmit(send, (failure) =>
    failure.name === 'AbortError' ? 'Stopped: the answer so far is kept.' : `Chat failed: ${failure.message}`,
  );
  const sendButton = useRef(null);
  const stopButton = useRef(null);
  useFocusHandover(busy, { whenIdle: sendButton, whileBusy: stopButton });

  return html`<section aria-labelledby="chat-heading" class="card">
    <h2 id="chat-heading">Chat: ask the model</h2>
    <form onSubmit=${submit}>
      <${ModelSelect} id="chat-model" models=${models} value=${model} onChange=${setModel} />
      <label>Prompt <textarea rows="3" required value=${prompt} onInput=${(e) => setPrompt(e.currentTarget.value)} /></label>
      <label>Max tokens
        <input type="number" min="1" max="1024" required value=${maxTokens}
          onInput=${(e) => setMaxTokens(Math.max(1, Math.min(1024, Number(e.currentTarget.value) || 1)))} />
      </label>
      <label>Temperature
        <input type="number" min="0" max="2" step="0.1" required value=${temperature}
          onInput=${(e) => setTemperature(Math.max(0, Math.min(2, Number(e.currentTarget.value) || 0)))} />
      </label>
      <div class="row play">
        <button type="submit" ref=${sendButton} disabled=${busy}>Send</button>
        <button type="button" class="secondary" ref=${stopButton} disabled=${!busy} onClick=${() => aborter.current?.abort()}>
          Stop answer
        </button>
      </div>
    </form>
    <${ErrorLine} error=${error} />
    <div aria-live="polite" aria-busy=${busy ? 'true' : 'false'}>
      ${(answer || busy) && html`<p class="answer chat-answer" data-testid="chat-answer">${answer || '…'}</p>`}
      ${result &&
      html`<${Timing} ms=${result.ms} usage=${result.usage} />
        ${result.firstMs !== null && html`<p class="timing">First token after <strong>${Math.round(result.firstMs)} ms</strong></p>`}
        <${Curl} command=${result.command} />`}
    </div>
  </section>`;
}
