"""The speech, rl and chat playgrounds in a real browser, over real models: a spoken sentence transcribed from a
WAV file and from the microphone (Chromium's fake device), a CartPole episode the policy plays, a chat answer
streamed; each playground at phone width, and a screenshot of each in build/screenshots/.

Every expectation names its playground and step, so a failure says where the console broke.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import soundfile  # type: ignore[import-untyped]
from playwright.sync_api import Locator, Page, Route, expect

from tests.browser.conftest import Server
from tests.browser.tabs import DESKTOP, FAKE_MICROPHONE, PHONE, TIMEOUT_MS, Tab, go, open_tab, shot, sign_in, step
from tests.conftest import ROOT

# flite's voice saying "Please call Stella and ask her to bring these things with her from the store."
MEDIA = ROOT / "tests" / "events" / "media"
STELLA = MEDIA / "stella.flac"
# A held-out speaker saying "up up left stop" for the spoken-commands model, and a red square for vision.
COMMANDS, RED = MEDIA / "commands.wav", MEDIA / "red.png"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"  # pinned in package.json
EPISODE_STEPS = 100


@pytest.fixture(scope="module")
def spoken(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The recorded sentence as a 16-bit PCM WAV file, the format a browser's user most often has at hand."""
    samples, rate = soundfile.read(STELLA, dtype="int16")
    path = tmp_path_factory.mktemp("audio") / "stella.wav"
    soundfile.write(path, samples, rate, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def tab(console_server: Server) -> Iterator[Tab]:
    """A tab signed in with the development key, on the Playground page, with a fake microphone that plays a tone."""
    with open_tab(args=FAKE_MICROPHONE) as opened:
        sign_in(opened.page, console_server.base, console_server.key)
        go(opened.page, "Playground")
        yield opened


@pytest.fixture(scope="module")
def page(tab: Tab) -> Page:
    return tab.page


@pytest.fixture(scope="module")
def logged(tab: Tab) -> list[str]:
    """Every error the page logs (a refused load, a Content-Security-Policy violation, an uncaught exception)."""
    return tab.logged


def region(page: Page, heading: str) -> Locator:
    return page.get_by_role("region", name=heading)


def test_speech_transcribes_a_spoken_wav_file(page: Page, spoken: Path) -> None:
    with step(page, "Speech playground: transcribe a WAV file"):
        speech = region(page, "Speech: transcribe audio")
        expect(speech.get_by_label("Model"), "speech: the transcription model first").to_have_value("sphinx-en-us")
        speech.get_by_label("Audio file").set_input_files(spoken)
        speech.get_by_role("button", name="Transcribe").click()
        transcript = speech.get_by_test_id("transcript")
        expect(transcript, "speech: the sentence comes back as text").to_contain_text("please call")
        expect(transcript, "speech: the whole sentence").to_contain_text("from the store")
        expect(speech.get_by_test_id("timing"), "speech: latency and the seconds billed").to_contain_text("seconds")
        expect(speech.locator("pre"), "speech: the curl command").to_contain_text("-F 'file=@stella.wav'")
        shot(speech, "playground-speech")


def test_speech_spots_spoken_commands(page: Page) -> None:
    with step(page, "Speech playground: spoken commands"):
        speech = region(page, "Speech: transcribe audio")
        speech.get_by_label("Model").select_option("speech-commands")
        speech.get_by_label("Audio file").set_input_files(COMMANDS)
        speech.get_by_role("button", name="Transcribe").click()
        expect(speech.get_by_test_id("transcript"), "speech: the commands spoken").to_have_text("up up left stop")
        speech.get_by_label("Model").select_option("sphinx-en-us")


def test_speech_records_the_microphone_as_wav(page: Page) -> None:
    with step(page, "Speech playground: record from the microphone"):
        speech = region(page, "Speech: transcribe audio")
        status = speech.get_by_test_id("audio-status")
        speech.get_by_role("button", name="Record from microphone").click()
        expect(status, "speech: recording, the seconds counting").to_have_text(re.compile(r"Recording… [1-9] s"))
        speech.get_by_role("button", name="Stop recording").click()
        expect(status, "speech: the recording is ready as WAV").to_contain_text("recording.wav")
        expect(status, "speech: its length and format").to_contain_text("16 kHz WAV")
        with page.expect_download() as download:
            speech.get_by_role("link", name="Save recording.wav").click()
        saved = download.value.path().read_bytes()
        assert saved[:4] == b"RIFF" and saved[8:12] == b"WAVE", "speech: the recording saves as the WAV file sent"
        # AND it plays back in the page: the player loads the recording (the page's policy lets it) and knows its length
        player = speech.get_by_test_id("playback")
        expect(player, "speech: a player for the recording").to_have_attribute("src", re.compile(r"^blob:"))
        # (-1: the player refused it; -2: nothing within 10 s, as where the page's policy blocks blob: media)
        length = player.evaluate(
            "p => p.readyState >= 1 ? p.duration : new Promise(done => {"
            " p.addEventListener('loadedmetadata', () => done(p.duration));"
            " p.addEventListener('error', () => done(-1)); setTimeout(() => done(-2), 10000); })"
        )
        assert length > 0.5, f"speech: the player reads the recording's length, got {length}"
        sent: list[bytes] = []

        def keep(route: Route) -> None:
            # The request's body as the browser sent it (a form's Blob part is not in the response's request).
            sent.append(route.request.post_data_buffer or b"")
            route.continue_()

        page.route("**/v1/audio/transcriptions", keep)
        try:
            with page.expect_response(lambda answer: answer.url.endswith("/v1/audio/transcriptions")) as answered:
                speech.get_by_role("button", name="Transcribe").click()
        finally:
            page.unroute("**/v1/audio/transcriptions", keep)
        response = answered.value
        body = sent[0] if sent else b""
        assert b'filename="recording.wav"' in body, "speech: the recording is sent as recording.wav"
        wav = body[body.index(b"RIFF") :] if b"RIFF" in body else b""
        assert wav[8:16] == b"WAVEfmt ", "speech: the part is a RIFF WAVE file"
        assert wav[20:24] == bytes([1, 0, 1, 0]), "speech: PCM, one channel"
        assert response.status == 200, f"speech: the server takes the recording, got {response.status}"
        expect(speech.get_by_test_id("transcript"), "speech: a transcript (a tone may have no words)").to_be_visible()


def test_rl_plays_a_cartpole_episode_the_policy_balances(page: Page) -> None:
    with step(page, "rl playground: play a CartPole episode"):
        rl = region(page, "rl: balance a CartPole")
        limit = rl.get_by_label("Step limit")
        limit.fill(str(EPISODE_STEPS))
        limit.press("Enter")  # the keyboard starts an episode as the Start button does
        # The limit's box is disabled while the episode runs: the keyboard's place moves to Stop, then back.
        expect(rl.get_by_role("button", name="Stop episode"), "rl: the episode runs, Stop at hand").to_be_focused()
        survived = rl.get_by_test_id("steps-survived")
        expect(survived, "rl: the policy keeps the pole up to the limit").to_have_text(
            str(EPISODE_STEPS), timeout=4 * TIMEOUT_MS
        )
        expect(rl, "rl: why the episode ended").to_contain_text(f"reached the limit of {EPISODE_STEPS} steps")
        expect(rl.get_by_test_id("episode-progress"), "rl: the state as text").to_contain_text(
            f"Step {EPISODE_STEPS}: cart at"
        )
        expect(rl.get_by_test_id("timing"), "rl: mean latency and usage").to_contain_text(
            f"{EPISODE_STEPS} observations"
        )
        expect(rl.locator("pre"), "rl: one step as curl").to_contain_text("/v1/rl/act")
        expect(rl.get_by_role("button", name="Start episode"), "rl: Start has the focus again").to_be_focused()
        drawn = rl.locator("canvas").evaluate(
            "canvas => canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data.some(v => v)"
        )
        assert drawn, "rl: the cart and pole are drawn on the canvas"
        shot(rl, "playground-rl")


def test_chat_streams_an_answer(page: Page) -> None:
    with step(page, "Chat playground: a streamed answer"):
        chat = region(page, "Chat: ask the model")
        expect(chat.get_by_label("Max tokens"), "chat: a small default").to_have_value("64")
        expect(chat.get_by_label("Temperature"), "chat: greedy by default").to_have_value("0")
        with page.expect_response(lambda answer: answer.url.endswith("/v1/chat/completions")) as answered:
            chat.get_by_role("button", name="Send").focus()
            page.keyboard.press("Enter")
        assert answered.value.headers["content-type"].startswith("text/event-stream"), "chat: the answer is streamed"
        expect(chat.get_by_test_id("timing"), "chat: latency and token usage").to_contain_text("completion tokens")
        answer = chat.get_by_test_id("chat-answer").inner_text().strip()
        assert answer and answer != "…", f"chat: the answer is written out, got {answer!r}"
        # The default question, answered greedily: what the model knows, not a sample of what it might say.
        assert "Paris" in answer, f"chat: the greedy answer to the default question names Paris, got {answer!r}"
        assert json.loads(answered.value.request.post_data or "{}")["temperature"] == 0, "chat: temperature sent"
        expect(chat.locator("pre"), "chat: the curl command, streaming").to_contain_text("curl -sN")
        expect(chat.get_by_role("button", name="Send"), "chat: the keyboard is back on Send").to_be_focused()
        shot(chat, "playground-chat")


def test_the_playgrounds_and_their_answers_pass_axe(page: Page) -> None:
    with step(page, "Playground page: axe-core's accessibility rules, every playground answered"):
        text = region(page, "Text: sentence similarity")
        text.get_by_role("button", name="Compare").click()
        expect(text.get_by_test_id("similarity"), "text: a similarity").to_be_visible()
        shot(text, "playground-text")
        vision = region(page, "Vision: classify an image")
        vision.get_by_label("Image").set_input_files(RED)
        vision.get_by_role("button", name="Classify").click()
        expect(vision.locator("table.labels tbody tr"), "vision: the top 5").to_have_count(5)
        shot(vision, "playground-vision")
        # Evaluated through the browser's debugging protocol, which the page's Content-Security-Policy does not
        # govern: the page itself still runs with no inline script and no eval.
        page.evaluate(AXE.read_text())
        violations = page.evaluate(
            """() => axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'best-practice']}).then((found) =>
                found.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`))"""
        )
        assert not violations, f"playgrounds: accessibility violations {violations}"


def test_the_playgrounds_fit_a_phone_and_nothing_broke(page: Page, logged: list[str]) -> None:
    with step(page, "Playground page at phone width"):
        page.set_viewport_size(PHONE)
        wide = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert wide <= 0, f"playground at phone width: the page is {wide} px wider than the screen"
        shot(page, "playground-phone")
        page.set_viewport_size(DESKTOP)
        assert not logged, f"the console logged errors (a Content-Security-Policy violation?): {logged}"
