// Speech: an audio file, or a recording from the microphone as WAV, transcribed by the OpenAI-shaped
// POST /v1/audio/transcriptions (any speech model: open-vocabulary transcription or spoken commands).
import { useEffect, useRef, useState } from 'preact/hooks';
import { call, curl } from '../api.js';
import { html } from '../html.js';
import { Curl, ErrorLine, Timing, useSubmit } from '../widgets.js';
import { useRecorder } from './recorder.js';
import { counted, ModelSelect, useFocusHandover } from './shared.js';

const PATH = '/v1/audio/transcriptions';

export function SpeechPlayground({ models }) {
  const [model, setModel] = useState(models[0].id);
  const [audio, setAudio] = useState(null); // { blob, name, seconds? }: seconds for a recording only
  const [url, setUrl] = useState(null); // the audio's object URL: played back here, and a recording saved from it
  const [result, setResult] = useState(null);
  const transcribe = async () => {
    const form = new FormData();
    form.append('model', model);
    form.append('file', audio.blob, audio.name);
    const answer = await call(PATH, { method: 'POST', form });
    const command = curl(PATH, { method: 'POST', fields: [['model', model], ['file', `@${audio.name}`]] });
    setResult({ text: answer.body.text, ms: answer.ms, usage: counted(answer.body.usage), command });
  };
  const { busy, error, submit } = useSubmit(
    transcribe,
    (failure) => `Transcription failed: ${failure.message}`,
    () => (audio ? null : 'Choose an audio file or record one first.'),
  );
  const transcribeButton = useRef(null);
  const recorder = useRecorder((recorded) => {
    setAudio(recorded);
    setResult(null);
  });
  useFocusHandover(busy, { whenIdle: transcribeButton });
  useEffect(() => {
    if (!audio) {
      setUrl(null);
      return undefined;
    }
    const made = URL.createObjectURL(audio.blob);
    setUrl(made);
    return () => URL.revokeObjectURL(made);
  }, [audio]);
  const choose = (event) => {
    const file = event.currentTarget.files[0];
    setAudio(file ? { blob: file, name: file.name } : null);
    setResult(null);
  };
  return html`<section aria-labelledby="speech-heading" class="card">
    <h2 id="speech-heading">Speech: transcribe audio</h2>
    <form onSubmit=${submit}>
      <${ModelSelect} id="speech-model" models=${models} value=${model} onChange=${setModel} />
      <label>Audio file
        <input type="file" accept="audio/*,.wav,.flac,.ogg,.mp3" disabled=${recorder.recording} onChange=${choose} />
      </label>
      <div class="row play">
        <button type="button" class=${recorder.recording ? 'danger' : 'secondary'}
          onClick=${recorder.recording ? recorder.stop : recorder.start}>
          ${recorder.recording ? 'Stop recording' : 'Record from microphone'}
        </button>
        <span role="status" data-testid="audio-status">
          ${recorder.recording
            ? `Recording… ${Math.floor(recorder.seconds)} s`
            : audio
              ? `Ready: ${audio.name}${audio.seconds ? ` (${audio.seconds.toFixed(1)} s, 16 kHz WAV)` : ''}`
              : 'No audio yet'}
        </span>
        ${url && audio.seconds && html`<a href=${url} download=${audio.name}>Save ${audio.name}</a>`}
      </div>
      ${url && html`<audio controls src=${url} aria-label=${`Play ${audio.name}`} data-testid="playback"></audio>`}
      <button type="submit" ref=${transcribeButton} disabled=${busy || recorder.recording}>Transcribe</button>
    </form>
    <${ErrorLine} error=${recorder.error || error} />
    <div aria-live="polite">
      ${result &&
      html`<p class="answer">Transcript: <strong data-testid="transcript">${result.text || '(no words recognised)'}</strong></p>
        <${Timing} ms=${result.ms} usage=${result.usage} />
        <${Curl} command=${result.command} />`}
    </div>
  </section>`;
}
