"""The speech domain over HTTP with the tiny tone model: V2 tensors, the transcribe task (JSON and multipart),
the OpenAI-shaped transcription endpoint, every audio format, and what is refused."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from aimass.http.app import build_app
from aimass.settings import Settings
from tests.tiny_speech import (
    CLIP,
    LABELS,
    TINY_SPEECH,
    build_tiny_speech,
    encoded,
    float_wav,
    pcm_wav,
    reference_probabilities,
    tone,
    utterance,
)

INFER = f"/v2/models/{TINY_SPEECH}/infer"
TRANSCRIBE = "/v1/speech/transcribe"
COMMANDS = ["up", "down", "stop", "up"]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    store: Path = tmp_path_factory.mktemp("speech-store")
    build_tiny_speech(store, max_seconds=5.0)
    settings = Settings(model_store=store, domains=("speech",), max_body_bytes=2 * 1024 * 1024)
    with TestClient(build_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def centred(word: str) -> np.ndarray:
    window = np.zeros(CLIP, np.float32)
    sound = tone(word)
    window[(CLIP - len(sound)) // 2 :][: len(sound)] = sound
    return window


def transcribe(client: TestClient, audio: bytes, **fields: str) -> dict[str, object]:
    response = client.post(TRANSCRIBE, json={"file": base64.b64encode(audio).decode(), **fields})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


# --- V2 ------------------------------------------------------------------------------------------------


def test_metadata_describes_one_second_windows_in_and_class_probabilities_out(client: TestClient) -> None:
    meta = client.get(f"/v2/models/{TINY_SPEECH}").json()
    assert meta["inputs"] == [{"name": "waveform", "datatype": "FP32", "shape": [-1, CLIP]}]
    assert meta["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, len(LABELS)]}]
    assert meta["parameters"] == {"domain": "speech", "task": "keyword-spotting", "serving_version": "1"}


def test_v2_json_infer_gives_each_windows_class_probabilities(client: TestClient) -> None:
    # GIVEN a window holding the "up" tone and a silent one
    windows = np.stack([centred("up"), np.zeros(CLIP, np.float32)])
    request = {
        "inputs": [{"name": "waveform", "datatype": "FP32", "shape": [2, CLIP], "data": windows.ravel().tolist()}]
    }
    # WHEN they are sent as V2 JSON
    response = client.post(INFER, json=request)
    # THEN the probabilities are the model's, "up" and "_silence_" win, and two seconds of audio are billed
    assert response.status_code == 200, response.text
    body = response.json()
    (output,) = body["outputs"]
    assert output["name"] == "probabilities" and output["shape"] == [2, len(LABELS)]
    probabilities = np.array(output["data"]).reshape(2, len(LABELS))
    np.testing.assert_allclose(probabilities, reference_probabilities(windows), rtol=1e-4, atol=1e-6)
    assert [LABELS[i] for i in probabilities.argmax(axis=1)] == ["up", "_silence_"]
    assert body["parameters"] == {"seconds": 2}


def binary_infer(client: TestClient, windows: np.ndarray) -> tuple[int, bytes, dict[str, str]]:
    blob = windows.astype("<f4").tobytes()
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "waveform",
                    "datatype": "FP32",
                    "shape": list(windows.shape),
                    "parameters": {"binary_data_size": len(blob)},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    response = client.post(INFER, content=header + blob, headers={"Inference-Header-Content-Length": str(len(header))})
    return response.status_code, response.content, dict(response.headers)


def test_v2_binary_infer_round_trips(client: TestClient) -> None:
    windows = np.stack([centred(word) for word in ("down", "stop", "up")])
    status, content, headers = binary_infer(client, windows)
    assert status == 200, content
    size = int(headers["inference-header-content-length"])
    probabilities = np.frombuffer(content[size:], dtype="<f4").reshape(3, len(LABELS))
    assert [LABELS[i] for i in probabilities.argmax(axis=1)] == ["down", "stop", "up"]


def test_v2_refuses_windows_of_the_wrong_length(client: TestClient) -> None:
    request = {"inputs": [{"name": "waveform", "datatype": "FP32", "shape": [1, 8000], "data": [0.0] * 8000}]}
    response = client.post(INFER, json=request)
    assert response.status_code == 400
    assert f"has shape [1, 8000]; expected [-1, {CLIP}]" in response.json()["error"]


def test_v2_refuses_non_finite_samples(client: TestClient) -> None:
    windows = centred("up")[None, :].copy()
    windows[0, 5] = np.inf
    status, content, _ = binary_infer(client, windows)
    assert status == 400 and "'waveform' has NaN or infinite samples" in json.loads(content)["error"]


# --- the transcribe task -------------------------------------------------------------------------------


def test_an_utterance_of_several_commands_is_cut_and_recognised_word_by_word(client: TestClient) -> None:
    # GIVEN four "commands" separated by pauses, as a 16-bit WAV
    audio = utterance(COMMANDS)
    # WHEN it is transcribed
    body = transcribe(client, pcm_wav(audio))
    # THEN the envelope carries the text, each word with its times and confidence, and the billed seconds
    assert body["model"] == TINY_SPEECH and body["model_version"] == "1" and body["request_id"]
    outputs = body["outputs"]
    assert isinstance(outputs, dict)
    assert outputs["text"] == "up down stop up"
    assert outputs["language"] == "english"
    assert outputs["duration"] == pytest.approx(len(audio) / 16000)
    words = outputs["words"]
    assert [w["word"] for w in words] == COMMANDS
    for index, word in enumerate(words):
        starts = 0.25 + index * 0.75
        assert word["start"] == pytest.approx(starts - 0.08, abs=0.03) and word["end"] == pytest.approx(
            starts + 0.48, abs=0.03
        )
        assert 0.5 < word["confidence"] <= 1.0
    assert body["usage"] == {"seconds": math.ceil(len(audio) / 16000)}


def test_broadband_sounds_are_unknown_words_and_stay_out_of_the_text(client: TestClient) -> None:
    noise = np.random.default_rng(0).standard_normal(6400).astype(np.float32) * 0.2
    audio = np.concatenate([utterance(["up"]), noise, utterance(["down"])])
    outputs = transcribe(client, pcm_wav(audio))["outputs"]
    assert isinstance(outputs, dict)
    assert outputs["text"] == "up down"
    assert [w["word"] for w in outputs["words"]] == ["up", "_unknown_", "down"]


def test_silence_transcribes_to_no_words(client: TestClient) -> None:
    outputs = transcribe(client, pcm_wav(np.zeros(16000, np.float32)))["outputs"]
    assert outputs == {"text": "", "language": "english", "duration": 1.0, "words": [], "segments": []}


AUDIO_FORMATS = {
    "pcm8": lambda a, r: pcm_wav(a, r, bits=8),
    "pcm16": lambda a, r: pcm_wav(a, r, bits=16),
    "pcm24": lambda a, r: pcm_wav(a, r, bits=24),
    "pcm32": lambda a, r: pcm_wav(a, r, bits=32),
    "float32": lambda a, r: float_wav(a, r),
    "float32-extensible": lambda a, r: float_wav(a, r, extensible=True),
    "float64": lambda a, r: float_wav(a, r, bits=64),
    "stereo16": lambda a, r: pcm_wav(a, r, channels=2),
    "flac": lambda a, r: encoded(a, "FLAC", r),
    "ogg-vorbis": lambda a, r: encoded(a, "OGG", r),
    "mp3": lambda a, r: encoded(a, "MP3", r),
}


@pytest.mark.parametrize("rate", [8000, 16000, 44100])
@pytest.mark.parametrize("kind", sorted(AUDIO_FORMATS))
def test_every_audio_format_and_rate_transcribes_alike(client: TestClient, kind: str, rate: int) -> None:
    # GIVEN the same commands as WAV (every sample format, mono and stereo), FLAC, OGG or MP3, at 8 to 44.1 kHz
    audio = AUDIO_FORMATS[kind](utterance(["up", "down", "stop"], rate=rate), rate)
    # WHEN transcribed THEN the rate and format make no difference
    outputs = transcribe(client, audio)["outputs"]
    assert isinstance(outputs, dict)
    assert outputs["text"] == "up down stop"


def test_multipart_upload_is_the_same_request(client: TestClient) -> None:
    files = {"file": ("commands.wav", pcm_wav(utterance(["stop", "up"])), "audio/wav")}
    response = client.post(TRANSCRIBE, files=files, data={"language": "en"})
    assert response.status_code == 200, response.text
    assert response.json()["outputs"]["text"] == "stop up"


@pytest.mark.parametrize(
    ("body", "status", "expected"),
    [
        ({"file": base64.b64encode(b"not audio").decode()}, 400, "'file' is not a WAV, FLAC, OGG or MP3 file"),
        ({"file": base64.b64encode(b"RIFF\0\0\0\0WAVEjunk").decode()}, 400, "without a valid 'fmt ' and 'data'"),
        ({"file": base64.b64encode(pcm_wav(np.zeros(0, np.float32))).decode()}, 400, "holds no audio samples"),
        ({"file": "***not base64***"}, 400, "not valid base64"),
        ({}, 400, "file"),
        ({"file": base64.b64encode(pcm_wav(tone("up"))).decode(), "language": "fr"}, 400, "language 'fr'"),
        ({"file": base64.b64encode(pcm_wav(tone("up"))).decode(), "temperature": 0}, 400, "temperature"),
    ],
)
def test_bad_uploads_get_a_4xx_naming_the_problem(
    client: TestClient, body: dict[str, str], status: int, expected: str
) -> None:
    response = client.post(TRANSCRIBE, json=body)
    assert response.status_code == status, response.text
    assert expected in response.json()["error"]["message"]


@pytest.mark.parametrize("kind", ["WAV", "FLAC", "OGG"])
def test_audio_longer_than_the_budget_is_a_413_naming_it(client: TestClient, kind: str) -> None:
    # GIVEN 6 s of audio, for a model that takes at most 5 s a request (small as FLAC or OGG: silence)
    silence = np.zeros(6 * 16000, np.float32)
    audio = pcm_wav(silence) if kind == "WAV" else encoded(silence, kind)
    # WHEN it is sent to be transcribed
    response = client.post(TRANSCRIBE, json={"file": base64.b64encode(audio).decode()})
    # THEN it is refused before it is decoded, naming the limit, the value and what to do
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("payload_too_large", "file")
    assert error["message"] == (
        "'file' holds 6 seconds of audio, over the per-request limit of 5 seconds of audio; "
        "split the audio into shorter files, one request each"
    )


def test_a_corrupt_flac_file_gets_a_reason_and_no_object_repr(client: TestClient) -> None:
    # GIVEN a file with FLAC's magic and garbage after it: libsndfile's own message names its stream object
    broken = b"fLaC" + bytes(64)
    # WHEN it is transcribed, through the task and through the OpenAI-shaped endpoint
    task = client.post(TRANSCRIBE, json={"file": base64.b64encode(broken).decode()})
    files = {"file": ("broken.flac", broken, "audio/flac")}
    openai = client.post("/v1/audio/transcriptions", files=files, data={"model": TINY_SPEECH})
    # THEN each is a 400 on 'file' that says what was expected, and shows no repr or address
    for response in (task, openai):
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["param"] == "file"
        assert error["message"].startswith("'file' looks like FLAC but cannot be decoded")
        assert error["message"].endswith("expected a complete, undamaged FLAC file")
        assert "BytesIO" not in error["message"] and "<" not in error["message"] and "0x" not in error["message"]


def test_an_upload_over_the_body_limit_is_a_413(client: TestClient) -> None:
    big = pcm_wav(np.zeros(40 * 16000, np.float32))  # 1.2 MiB of WAV, 1.6 MiB as base64
    response = client.post(TRANSCRIBE, json={"file": base64.b64encode(big + big).decode()})
    assert response.status_code == 413


# --- OpenAI-shaped transcriptions ----------------------------------------------------------------------


@pytest.mark.parametrize("response_format", ["json", "text", "verbose_json"])
def test_openai_transcriptions_render_the_task(client: TestClient, response_format: str) -> None:
    files = {"file": ("commands.flac", encoded(utterance(["down", "up"]), "FLAC"), "audio/flac")}
    data = {"model": TINY_SPEECH, "response_format": response_format, "timestamp_granularities[]": "word"}
    response = client.post("/v1/audio/transcriptions", files=files, data=data)
    assert response.status_code == 200, response.text
    if response_format == "text":
        assert response.text == "down up\n"
        return
    body = response.json()
    assert body["text"] == "down up"
    if response_format == "verbose_json":
        assert body["task"] == "transcribe" and body["language"] == "english"
        assert [w["word"] for w in body["words"]] == ["down", "up"]


def test_openai_subtitles_and_segments_from_the_command_model(client: TestClient) -> None:
    # GIVEN two commands, a second of silence, then a third: two segments
    pause = np.zeros(16000, np.float32)
    audio = pcm_wav(np.concatenate([utterance(["down", "up"]), pause, utterance(["stop"])]))
    files = {"file": ("commands.wav", audio, "audio/wav")}
    verbose = client.post(
        "/v1/audio/transcriptions", files=files, data={"model": TINY_SPEECH, "response_format": "verbose_json"}
    )
    segments = verbose.json()["segments"]
    assert [s["text"] for s in segments] == ["down up", "stop"] and "words" not in verbose.json()
    assert segments[0]["end"] + 0.5 <= segments[1]["start"]
    # WHEN they are asked for as subtitles THEN each segment is a cue, with its times
    srt = client.post("/v1/audio/transcriptions", files=files, data={"model": TINY_SPEECH, "response_format": "srt"})
    assert srt.status_code == 200 and srt.headers["content-type"].startswith("text/plain")
    first, second = srt.text.strip().split("\n\n")
    assert first.split("\n")[0] == "1" and first.split("\n")[2] == "down up" and second.split("\n")[2] == "stop"
    vtt = client.post("/v1/audio/transcriptions", files=files, data={"model": TINY_SPEECH, "response_format": "vtt"})
    assert vtt.headers["content-type"].startswith("text/vtt") and vtt.text.startswith("WEBVTT\n\n00:00:00.")
    assert vtt.text.count(" --> ") == 2


def test_openai_transcriptions_refuse_a_corrupt_file(client: TestClient) -> None:
    files = {"file": ("broken.ogg", b"OggS" + bytes(64), "audio/ogg")}
    response = client.post("/v1/audio/transcriptions", files=files, data={"model": TINY_SPEECH})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "file" and "looks like OGG but cannot be decoded" in error["message"]
