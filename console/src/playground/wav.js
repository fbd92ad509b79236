// Audio the browser holds (a recording in WebM/Opus, any file it can decode) as a 16-bit PCM WAV file, the
// format the speech functions read without any codec library: decoded and resampled by the Web Audio API,
// mixed down to mono, written with a 44-byte RIFF header.
export const RATE = 16000; // the speech models' rate: the server resamples anything else, but the upload is smaller

export async function toWav(blob, rate = RATE) {
  // An offline context decodes without an audio device, resampling to its own rate as it does.
  const context = new OfflineAudioContext(1, 1, rate);
  const audio = await context.decodeAudioData(await blob.arrayBuffer());
  return { wav: encodeWav(mono(audio), audio.sampleRate), seconds: audio.duration };
}

function mono(audio) {
  if (audio.numberOfChannels === 1) return audio.getChannelData(0);
  const mixed = new Float32Array(audio.length);
  for (let channel = 0; channel < audio.numberOfChannels; channel += 1) {
    const samples = audio.getChannelData(channel);
    for (let n = 0; n < samples.length; n += 1) mixed[n] += samples[n] / audio.numberOfChannels;
  }
  return mixed;
}

export function encodeWav(samples, rate) {
  const view = new DataView(new ArrayBuffer(44 + samples.length * 2));
  const text = (offset, value) => [...value].forEach((c, n) => view.setUint8(offset + n, c.charCodeAt(0)));
  text(0, 'RIFF');
  view.setUint32(4, 36 + samples.length * 2, true);
  text(8, 'WAVE');
  text(12, 'fmt ');
  view.setUint32(16, 16, true); // the fmt chunk's size
  view.setUint16(20, 1, true); // PCM
  view.setUint16(22, 1, true); // one channel
  view.setUint32(24, rate, true);
  view.setUint32(28, rate * 2, true); // bytes per second
  view.setUint16(32, 2, true); // bytes per frame
  view.setUint16(34, 16, true); // bits per sample
  text(36, 'data');
  view.setUint32(40, samples.length * 2, true);
  for (let n = 0; n < samples.length; n += 1) {
    const sample = Math.max(-1, Math.min(1, samples[n]));
    view.setInt16(44 + n * 2, sample < 0 ? sample * 0x8000 : sample * 0x7fff, true);
  }
  return new Blob([view], { type: 'audio/wav' });
}
