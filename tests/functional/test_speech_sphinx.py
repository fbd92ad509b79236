"""sphinx-en-us, open-vocabulary English transcription, through the real entry points: HTTP (the OpenAI-shaped
endpoint in every response format, the transcribe task, V2), the OpenAI SDK, and the Lambda handler with a
generated API Gateway event.

Sentences are spoken by flite and festival (Debian packages, scripts/system-packages.sh) at test time; the
recogniser must give back what was said, up to a word error rate that its model card's measurements allow.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import math
import struct
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from openai import BadRequestError, OpenAI

from aimass.http.app import build_app
from aimass.lambda_context import LocalLambdaContext
from aimass.metering.key_admin import create_key
from aimass.metering.stores.key_factory import open_key_store
from aimass.settings import Settings
from aimass.store.sealing.keys import LocalKeyProvider
from aimass.store.sealing.seal import seal_version
from models.speech.sphinx.score import error_rate
from models.speech.sphinx.spec import NAME, SAMPLE_TEXT
from models.speech.sphinx.voices import Voice, speak
from tests.conftest import ROOT, import_handler, load_event, load_script, response_body
from tests.functional.test_scheduling import ASYNC, PLANS, assert_accepted, auth, make_settings, output_line
from tests.tiny_speech import encoded, pcm_wav

pytestmark = pytest.mark.real_model
TRANSCRIPTIONS = "/v1/audio/transcriptions"
STELLA = "Please call Stella and ask her to bring these things with her from the store."
WEATHER = "The weather today is sunny with a high of seventy degrees."
KAL = Voice("flite", "kal16")


@pytest.fixture(scope="module")
def store() -> Path:
    """The real model, built once per checkout into the repository's store by its own build (a no-op when
    present)."""
    build = load_script(ROOT / "models/speech/sphinx/build.py", "build_speech_sphinx")
    store: Path = ROOT / "model_store"
    build.build(store)
    return store


@pytest.fixture(scope="module")
def client(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    # The store may hold other speech models: only this one is loaded, so that the tests need no other build.
    only = tmp_path_factory.mktemp("sphinx-store")
    (only / NAME).symlink_to(store / NAME, target_is_directory=True)
    settings = Settings(model_store=only, domains=("speech",))
    with TestClient(build_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def stella() -> bytes:
    return speak(Voice("flite", "rms"), STELLA)


def post(client: TestClient, audio: bytes, **data: str | list[str]) -> Any:
    files = {"file": ("speech.wav", audio, "audio/wav")}
    return client.post(TRANSCRIPTIONS, files=files, data={"model": NAME, **data})


def test_a_sentence_comes_back_as_text(client: TestClient, stella: bytes) -> None:
    # GIVEN a sentence of ordinary English spoken by a voice, as a WAV file
    # WHEN it is posted to OpenAI's transcription endpoint naming the model
    response = client.post(TRANSCRIPTIONS, files={"file": ("s.wav", stella)}, data={"model": NAME})
    # THEN the text is what was said (its card measures 15-32% on flite's voices; this voice does better)
    assert response.status_code == 200, response.text
    body = response.json()
    assert error_rate([(STELLA, body["text"])])["wer"] <= 0.2, body["text"]
    # AND it is billed by the second of audio
    assert body["usage"] == {"type": "duration", "seconds": 5}
    assert response.headers["x-model-version"] == "1"


@pytest.mark.parametrize("voice", [Voice("flite", "awb"), Voice("festival", "kal_diphone")], ids=lambda v: v.label)
def test_other_voices_and_codecs(client: TestClient, voice: Voice) -> None:
    # GIVEN the sentence by another voice, sent as FLAC at 22.05 kHz
    from aimass_speech.audio import decode, resample

    samples, rate = decode(speak(voice, WEATHER), max_seconds=30)
    flac = encoded(resample(samples, rate, 22050), "FLAC", rate=22050)
    response = client.post(TRANSCRIPTIONS, files={"file": ("w.flac", flac)}, data={"model": NAME})
    assert response.status_code == 200, response.text
    assert error_rate([(WEATHER, response.json()["text"])])["wer"] <= 0.25, response.json()["text"]


def test_text_format(client: TestClient) -> None:
    response = post(client, speak(KAL, SAMPLE_TEXT), response_format="text")
    assert response.status_code == 200
    assert response.text == f"{SAMPLE_TEXT}\n"


def test_verbose_json_gives_segments_by_default_and_words_when_asked(client: TestClient, stella: bytes) -> None:
    plain = post(client, stella, response_format="verbose_json").json()
    assert plain["task"] == "transcribe" and plain["language"] == "english" and 4.0 < plain["duration"] < 6.0
    assert "words" not in plain and plain["segments"]
    assert " ".join(s["text"] for s in plain["segments"]) == plain["text"]
    segment = plain["segments"][0]
    assert set(segment) >= {"id", "start", "end", "text", "tokens", "avg_logprob", "no_speech_prob"}
    # WHEN words are asked for as the SDK asks (timestamp_granularities[] given twice)
    both = post(client, stella, response_format="verbose_json", **{"timestamp_granularities[]": ["word", "segment"]})
    body = both.json()
    words = body["words"]
    # THEN each word has its times, in order, inside the file, and the segments are there too
    assert " ".join(w["word"] for w in words) == body["text"] and body["segments"]
    assert all(0 <= w["start"] < w["end"] <= body["duration"] for w in words)
    assert all(a["end"] <= b["start"] for a, b in itertools.pairwise(words))
    assert all(0 <= w["confidence"] <= 1 for w in words)


def test_a_pause_starts_a_new_segment(client: TestClient) -> None:
    # GIVEN two sentences with a second of silence between them
    from aimass_speech.audio import decode, resample

    parts = [resample(*decode(speak(KAL, text), max_seconds=30), 16000) for text in (SAMPLE_TEXT, WEATHER)]
    silence = np.zeros(16000, np.float32)
    wav = pcm_wav(np.concatenate([parts[0], silence, parts[1]]))
    # WHEN they are transcribed as subtitles
    srt = post(client, wav, response_format="srt").text
    vtt = post(client, wav, response_format="vtt").text
    # THEN each sentence is a cue of its own, with its times, in both formats
    cues = srt.strip().split("\n\n")
    assert len(cues) == 2, srt
    number, times, text = cues[0].split("\n")
    assert number == "1" and times.startswith("00:00:00,") and " --> 00:00:0" in times and text == SAMPLE_TEXT
    second_start = cues[1].split("\n")[1].split(" --> ")[0]
    assert second_start >= "00:00:02,500"  # after the first sentence (1.7 s) and the second of silence
    assert vtt.startswith("WEBVTT\n\n00:00:00.") and vtt.count(" --> ") == 2


def test_the_transcribe_task_and_v2_answer_the_same_words(client: TestClient) -> None:
    wav = speak(KAL, SAMPLE_TEXT)
    task = client.post("/v1/speech/transcribe", json={"model": NAME, "file": base64.b64encode(wav).decode()})
    assert task.status_code == 200, task.text
    outputs = task.json()["outputs"]
    assert outputs["text"] == SAMPLE_TEXT and outputs["segments"][0]["text"] == SAMPLE_TEXT
    assert task.json()["usage"] == {"seconds": 2}

    from aimass_speech.audio import decode, resample

    samples = resample(*decode(wav, max_seconds=30), 16000)
    blob = samples.astype("<f4").tobytes()
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "waveform",
                    "datatype": "FP32",
                    "shape": [1, len(samples)],
                    "parameters": {"binary_data_size": len(blob)},
                }
            ]
        }
    ).encode()
    response = client.post(
        f"/v2/models/{NAME}/infer",
        content=header + blob,
        headers={"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(header))},
    )
    assert response.status_code == 200, response.text
    (output,) = response.json()["outputs"]
    assert (output["name"], output["datatype"], output["shape"], output["data"]) == (
        "text",
        "BYTES",
        [1],
        [SAMPLE_TEXT],
    )
    assert response.json()["parameters"] == {"seconds": 2}


def test_v2_metadata_names_the_served_tensors(client: TestClient) -> None:
    metadata = client.get(f"/v2/models/{NAME}").json()
    assert metadata["inputs"] == [{"name": "waveform", "datatype": "FP32", "shape": [1, -1]}]
    assert metadata["outputs"] == [{"name": "text", "datatype": "BYTES", "shape": [1]}]


def silent_flac(seconds: int, rate: int, channels: int = 1) -> bytes:
    """Digital silence as FLAC: a few kilobytes whose header says how long it is."""
    import soundfile  # type: ignore[import-untyped]

    buffer = io.BytesIO()
    block = np.zeros((rate, channels), np.float32)
    with soundfile.SoundFile(buffer, "w", rate, channels, format="FLAC", subtype="PCM_16") as out:
        for _ in range(seconds):
            out.write(block)
    return buffer.getvalue()


def _wav_header(rate: int, channels: int, bits: int = 16, frames: int = 16000) -> bytes:
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * channels * bits // 8, channels * bits // 8, bits)
    data = bytes(frames * channels * bits // 8)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


@pytest.mark.parametrize(
    ("audio", "status", "message"),
    [
        (b"", 400, "is not a WAV, FLAC, OGG or MP3 file"),
        (b"OggS" + bytes(64), 400, "looks like OGG but cannot be decoded"),
        (b"%PDF-1.7 not audio", 400, "is not a WAV, FLAC, OGG or MP3 file"),
        (_wav_header(rate=1, channels=1), 400, "sample rate of 1 Hz"),
        (_wav_header(rate=16000, channels=200, frames=10), 400, "200 channels"),
        (_wav_header(rate=16000, channels=1, frames=0), 400, "holds no audio samples"),
        (
            pcm_wav(np.zeros(31 * 16000, np.float32)),
            413,
            "'file' has 31 seconds of audio; at most 30 are answered per synchronous request. Send it again with the "
            "header 'Prefer: respond-async'",
        ),
        (silent_flac(1801, 4000), 413, "holds 1,801 seconds of audio, over the per-request limit of 1,800 seconds"),
        (silent_flac(31, 192000, channels=8), 413, "holds 47,616,000 samples (frames x channels), over the"),
    ],
    ids=[
        "empty",
        "corrupt-ogg",
        "not-audio",
        "absurd-rate",
        "absurd-channels",
        "no-samples",
        "longer-than-synchronous",
        "longer-than-a-batch-takes",
        "too-many-samples",
    ],
)
def test_bad_audio_is_refused_naming_the_problem(client: TestClient, audio: bytes, status: int, message: str) -> None:
    response = post(client, audio)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["param"] == "file" and message in error["message"]


@pytest.mark.parametrize(
    ("samples", "status", "message"),
    [
        (np.full((1, 1600), np.nan, np.float32), 400, "NaN or infinite"),
        (np.zeros((1, 31 * 16000), np.float32), 413, "over the per-request limit of 30"),
    ],
    ids=["nan", "too-long"],
)
def test_bad_v2_waveforms_are_refused(client: TestClient, samples: np.ndarray, status: int, message: str) -> None:
    blob = samples.astype("<f4").tobytes()
    inputs = [{"name": "waveform", "datatype": "FP32", "shape": list(samples.shape)}]
    header = json.dumps({"inputs": [{**inputs[0], "parameters": {"binary_data_size": len(blob)}}]}).encode()
    response = client.post(
        f"/v2/models/{NAME}/infer",
        content=header + blob,
        headers={"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(header))},
    )
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


def test_the_openai_sdk(client: TestClient, stella: bytes) -> None:
    sdk = OpenAI(base_url="http://testserver/v1", api_key="unused", http_client=client, max_retries=0)
    # GIVEN the SDK's own call, as its documentation shows it
    verbose = sdk.audio.transcriptions.create(
        model=NAME,
        file=("stella.wav", io.BytesIO(stella)),
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    # THEN its typed answer has the text, the words and the segments
    assert error_rate([(STELLA, verbose.text)])["wer"] <= 0.2
    assert verbose.words is not None and verbose.segments is not None
    assert [w.word for w in verbose.words] == verbose.text.split()
    assert verbose.segments[0].start <= verbose.words[0].start
    srt = sdk.audio.transcriptions.create(model=NAME, file=("s.wav", io.BytesIO(stella)), response_format="srt")
    assert str(srt).startswith("1\n00:00:0")
    with pytest.raises(BadRequestError, match="sample rate of 1 Hz"):
        sdk.audio.transcriptions.create(model=NAME, file=("bad.wav", io.BytesIO(_wav_header(rate=1, channels=1))))


@pytest.fixture(scope="module")
def handler_module(store: Path, tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    only = tmp_path_factory.mktemp("sphinx-lambda-store")
    (only / NAME).symlink_to(store / NAME, target_is_directory=True)
    with pytest.MonkeyPatch.context() as monkeypatch:
        return import_handler(only, monkeypatch, "speech")


def test_the_lambda_handler_answers_an_openai_sdk_request_event(
    handler_module: ModuleType, lambda_context: LocalLambdaContext
) -> None:
    # GIVEN a generated HTTP API event: the SDK's multipart form (a FLAC of flite's awb voice, verbose_json,
    # timestamp_granularities[] word and segment)
    event = load_event("apigw_http_v2_speech_sphinx_transcriptions")
    # WHEN the speech function's handler answers it
    response = handler_module.handler(event, lambda_context)
    # THEN it is the verbose transcription (awb: 22% WER on the card's sentences, 4 of 15 words wrong here),
    # words and segments, billed by the second
    assert response["statusCode"] == 200, response
    body = json.loads(response_body(response))
    assert error_rate([(STELLA, body["text"])])["wer"] <= 0.3, body["text"]
    assert body["words"] and body["segments"] and body["usage"] == {"type": "duration", "seconds": 5}


def test_a_sealed_version_is_decrypted_in_memory_only(store: Path, tmp_path: Path) -> None:
    # GIVEN the version sealed under a local master key (envelope encryption of every file)
    master = LocalKeyProvider.create_or_open(tmp_path / "master.key")
    sealed = tmp_path / "sealed" / NAME / "1"
    seal_version(store / NAME / "1", sealed, master)
    assert (sealed / "en-us.lm.bin").read_bytes()[:256] != (store / NAME / "1" / "en-us.lm.bin").read_bytes()[:256]
    # WHEN a server with that key serves it
    settings = Settings(model_store=tmp_path / "sealed", domains=("speech",), master_key_file=tmp_path / "master.key")
    with TestClient(build_app(settings)) as client:
        response = post(client, speak(KAL, SAMPLE_TEXT), response_format="text")
    # THEN PocketSphinx read the decrypted files from memory, and hears the sentence as the plain version does
    assert response.status_code == 200, response.text
    assert response.text == f"{SAMPLE_TEXT}\n"


BOOKING = "I would like to book a table for two people tonight."


def test_a_recording_longer_than_a_synchronous_call_is_transcribed_as_a_batch(
    store: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from aimass_speech.audio import decode, resample

    # GIVEN 35 s of speech: eight sentences, each followed by a second and a half of silence, as FLAC
    sentences = [SAMPLE_TEXT, WEATHER, STELLA, BOOKING] * 2
    pause = np.zeros(24000, np.float32)
    parts = [
        piece for text in sentences for piece in (resample(*decode(speak(KAL, text), max_seconds=30), 16000), pause)
    ]
    recording = np.concatenate(parts)
    assert 32 * 16000 < len(recording) < 40 * 16000
    only = tmp_path_factory.mktemp("sphinx-batch-store")
    (only / NAME).symlink_to(store / NAME, target_is_directory=True)
    settings = make_settings(only, tmp_path_factory.mktemp("sphinx-batch-state"), max_body_bytes=4 << 20)
    secret = create_key(
        open_key_store(settings), tenant="acme", scopes=("invoke",), plan="default", plans=PLANS, now=datetime.now(UTC)
    ).clear_text
    form = {"model": NAME, "response_format": "verbose_json", "timestamp_granularities[]": ["word", "segment"]}
    files = {"file": ("long.flac", encoded(recording, "FLAC"), "audio/flac")}
    with TestClient(build_app(settings), raise_server_exceptions=False) as client:
        # WHEN it is sent as a synchronous call THEN it is a 413 that says how to run it as a batch
        refused = client.post(TRANSCRIPTIONS, headers=auth(secret), data=form, files=files)
        assert refused.status_code == 413 and "Prefer: respond-async" in refused.json()["error"]["message"]
        # WHEN it is sent again with Prefer: respond-async THEN a batch runs it
        accepted = client.post(TRANSCRIPTIONS, headers=auth(secret, **ASYNC), data=form, files=files)
        assert_accepted(accepted, TRANSCRIPTIONS)
        answer = output_line(client, secret, accepted)["response"]["body"]
    # AND the whole recording is transcribed, in pieces cut at its pauses, with times that run on past 30 s
    said = " ".join(sentences)
    assert error_rate([(said, answer["text"])])["wer"] <= 0.2, answer["text"]
    assert answer["duration"] == pytest.approx(len(recording) / 16000)
    words = answer["words"]
    assert all(a["end"] <= b["start"] for a, b in itertools.pairwise(words)) and words[-1]["end"] > 32
    # Each sentence is a segment of its own, starting where it was spoken
    starts = np.cumsum([0] + [len(p) for p in parts])[::2][:-1] / 16000
    assert len(answer["segments"]) == len(sentences), [s["text"] for s in answer["segments"]]
    for segment, start in zip(answer["segments"], starts, strict=True):
        assert start <= segment["start"] < start + 0.5
    assert answer["usage"] == {"type": "duration", "seconds": math.ceil(len(recording) / 16000)}
