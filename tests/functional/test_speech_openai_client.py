"""The OpenAI SDK's ``audio.transcriptions`` against the real local server (``aimass serve``) over TCP."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from openai import BadRequestError, OpenAI

from tests.integration.test_clients import start_server, stop_server
from tests.ports import free_port
from tests.tiny_speech import TINY_SPEECH, build_tiny_speech, encoded, pcm_wav, utterance


@pytest.fixture(scope="module")
def openai_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenAI]:
    store = tmp_path_factory.mktemp("speech-sdk-store")
    build_tiny_speech(store)
    port = free_port()
    process: subprocess.Popen[str] = start_server(store, port)
    yield OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="not-needed-locally", max_retries=0)
    stop_server(process)
    process.wait()


def test_sdk_transcribes_a_wav_file(openai_client: OpenAI, tmp_path: Path) -> None:
    # GIVEN a WAV file on disk WHEN the SDK uploads it, as its documentation shows
    path = tmp_path / "commands.wav"
    path.write_bytes(pcm_wav(utterance(["up", "stop", "down"])))
    with path.open("rb") as audio:
        transcription = openai_client.audio.transcriptions.create(model=TINY_SPEECH, file=audio)
    # THEN the text comes back
    assert transcription.text == "up stop down"


def test_sdk_verbose_json_has_the_words_and_their_times(openai_client: OpenAI, tmp_path: Path) -> None:
    path = tmp_path / "commands.ogg"
    path.write_bytes(encoded(utterance(["down", "up"]), "OGG"))
    with path.open("rb") as audio:
        verbose = openai_client.audio.transcriptions.create(
            model=TINY_SPEECH, file=audio, response_format="verbose_json", timestamp_granularities=["word"]
        )
    assert verbose.text == "down up" and verbose.language == "english"
    assert verbose.words is not None and [w.word for w in verbose.words] == ["down", "up"]
    assert verbose.words[0].end < verbose.words[1].start
    assert verbose.duration == pytest.approx(len(utterance(["down", "up"])) / 16000)


def test_sdk_text_format(openai_client: OpenAI, tmp_path: Path) -> None:
    path = tmp_path / "commands.wav"
    path.write_bytes(pcm_wav(utterance(["stop"])))
    with path.open("rb") as audio:
        text = openai_client.audio.transcriptions.create(model=TINY_SPEECH, file=audio, response_format="text")
    assert str(text).strip() == "stop"


def test_sdk_sees_a_bad_request_for_a_file_that_is_not_audio(openai_client: OpenAI, tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a recording")
    with path.open("rb") as audio, pytest.raises(BadRequestError, match="is not a WAV, FLAC, OGG or MP3 file"):
        openai_client.audio.transcriptions.create(model=TINY_SPEECH, file=audio)
