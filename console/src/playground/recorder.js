// Recording from the microphone: getUserMedia and MediaRecorder, the recording turned into a WAV file (wav.js)
// when it stops. Stops by itself after MAX_SECONDS, and when the page that started it goes away.
import { useEffect, useRef, useState } from 'preact/hooks';
import { toWav } from './wav.js';

export const MAX_SECONDS = 30; // the speech models refuse longer files than a synchronous request may hold

export function useRecorder(onRecorded) {
  const [recording, setRecording] = useState(false);
  const [seconds, setSeconds] = useState(0);
  const [error, setError] = useState(null);
  const live = useRef(null); // { recorder, stream, timer }
  const done = useRef(onRecorded);
  done.current = onRecorded;

  const release = () => {
    const current = live.current;
    live.current = null;
    if (!current) return;
    clearInterval(current.timer);
    current.stream.getTracks().forEach((track) => track.stop());
  };
  useEffect(
    () => () => {
      if (live.current) {
        live.current.recorder.onstop = null; // nothing to convert for a page that is gone
        if (live.current.recorder.state !== 'inactive') live.current.recorder.stop();
      }
      release();
    },
    [],
  );

  const start = async () => {
    setError(null);
    if (!navigator.mediaDevices || typeof MediaRecorder === 'undefined') {
      setError('This browser cannot record audio here (it needs a secure page: https or localhost).');
      return;
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (failure) {
      setError(`The microphone could not be opened: ${failure.message}`);
      return;
    }
    const recorder = new MediaRecorder(stream);
    const chunks = [];
    const began = performance.now();
    recorder.ondataavailable = (event) => chunks.push(event.data);
    recorder.onstop = async () => {
      release();
      setRecording(false);
      try {
        const { wav, seconds: length } = await toWav(new Blob(chunks, { type: recorder.mimeType }));
        done.current({ blob: wav, name: 'recording.wav', seconds: length });
      } catch (failure) {
        setError(`The recording could not be converted to WAV: ${failure.message}`);
      }
    };
    const timer = setInterval(() => {
      const elapsed = (performance.now() - began) / 1000;
      setSeconds(elapsed);
      if (elapsed >= MAX_SECONDS) stop();
    }, 250);
    live.current = { recorder, stream, timer };
    setSeconds(0);
    setRecording(true);
    recorder.start();
  };
  const stop = () => {
    if (live.current && live.current.recorder.state !== 'inactive') live.current.recorder.stop();
  };
  return { recording, seconds, error, start, stop };
}
