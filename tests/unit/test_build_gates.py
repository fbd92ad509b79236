"""Every model build's quality gate, seen to stop a broken model or a wrong reference with a message.

Each test calls the gate a build runs (the function its ``build.py`` calls) on what a build would hand it, with
one thing wrong: a graph with a weight changed, a reference that disagrees, a tokeniser setting that drifted,
or a measurement below its minimum. A control beside each shows the same gate passing the intact model, so a
test fails if the gate stops checking. Real built models are used where the gate measures one (each build is a
no-op when its model is in the store); nothing is trained or rebuilt here.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import Whitespace

from aimass.serving.domains import checkout_domains
from aimass.serving.session import SessionFactory
from aimass.settings import Settings
from aimass.store.base import ModelArtifact
from aimass.store.manifest import file_entry, read_manifest, write_manifest
from models.buildkit import BuildError
from tests.tiny_models import build_tiny_text, reference_embedding

ROOT = Path(__file__).resolve().parents[2]
STORE = ROOT / "model_store"
Perturb = Callable[[onnx.GraphProto], None]


def broken_copy(version: Path, into: Path, perturb: Perturb) -> Path:
    """A copy of a built version whose model.onnx is changed by ``perturb``, its manifest rehashed to match (a
    build that went wrong still writes a consistent manifest)."""
    copy = into / version.parent.name / version.name
    shutil.copytree(version, copy)
    model = onnx.load(str(copy / "model.onnx"))
    perturb(model.graph)
    onnx.save(model, str(copy / "model.onnx"))
    manifest = read_manifest(copy)
    files = tuple(file_entry(copy, e.path) if e.path == "model.onnx" else e for e in manifest.files)
    write_manifest(copy, manifest.model_copy(update={"files": files}))
    return copy


def favour_class(index: int) -> Perturb:
    """Raise one class's bias in the graph's last Gemm (the output layer) far above the others."""

    def perturb(graph: onnx.GraphProto) -> None:
        bias_name = [node for node in graph.node if node.op_type == "Gemm"][-1].input[2]
        (bias,) = [tensor for tensor in graph.initializer if tensor.name == bias_name]
        values = numpy_helper.to_array(bias).copy()
        values[index] += 100.0
        bias.CopyFrom(numpy_helper.from_array(values, bias_name))

    return perturb


# --- text: all-minilm-l6-v2 measures through the text runtime (a tiny model with the real one's signature) ---


class NumpyReference:
    """The tiny text model computed without ONNX Runtime or the server (tests/tiny_models.py), as the build's
    SentenceTransformer reference is: ``encode`` of every text, whole words up to 16."""

    def __init__(self, *, flip: bool = False) -> None:
        self.sign = -1.0 if flip else 1.0

    def encode(self, texts: list[str], **_: Any) -> np.ndarray:
        return self.sign * np.stack([reference_embedding(text) for text in texts])


TEXT_EVAL = {
    "sentences": ["the cat sat on the mat", "a dog runs fast", "the sun and the moon", " ".join(["red car"] * 150)],
    "paraphrase_pairs": [["the cat sat on the mat", "the cat sat on a mat"], ["a dog runs fast", "the dog runs fast"]],
    "unrelated_pairs": [["the cat sat on the mat", "blue sky green tree"], ["a dog runs fast", "moon sun house"]],
}


def text_quality(directory: Path, reference: Any, eval_data: dict[str, Any] = TEXT_EVAL) -> dict[str, Any]:
    from models.text.minilm.quality import measure_quality
    from models.text.minilm.served import served_runtime

    runtime = served_runtime(directory, read_manifest(directory))
    return measure_quality(runtime, Tokenizer.from_file(str(directory / "tokenizer.json")), reference, eval_data)


def test_text_gate_passes_a_served_path_that_matches_its_reference(tmp_path: Path) -> None:
    quality = text_quality(build_tiny_text(tmp_path), NumpyReference())

    assert quality["reference_min_cosine"] > 0.9999 and quality["paraphrase_mean_cosine"] > 0.5


def test_text_gate_stops_a_reference_the_served_path_disagrees_with(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"served vs reference cosine -1\.0+ < 0\.999 for '"):
        text_quality(build_tiny_text(tmp_path), NumpyReference(flip=True))


def test_text_gate_sees_the_servers_tokenising_drift(tmp_path: Path) -> None:
    # GIVEN the server truncating at 4 tokens where the reference keeps 16 (a changed manifest or runtime)
    directory = build_tiny_text(tmp_path)
    manifest = read_manifest(directory)
    drifted = {**manifest.preprocessing, "max_length": 4}
    write_manifest(directory, manifest.model_copy(update={"preprocessing": drifted}))

    # THEN measuring through the runtime shows it (worst on the texts run together, cut at 4 words of 300)
    with pytest.raises(BuildError, match=r"served vs reference cosine 0\.\d+ < 0\.999 for 'the cat sat on the mat a"):
        text_quality(directory, NumpyReference())


def test_text_gate_stops_paraphrases_that_score_no_higher_than_unrelated_pairs(tmp_path: Path) -> None:
    swapped = {**TEXT_EVAL, "paraphrase_pairs": TEXT_EVAL["unrelated_pairs"]}

    with pytest.raises(BuildError, match=r"paraphrases \(.*\) do not score above unrelated pairs"):
        text_quality(build_tiny_text(tmp_path), NumpyReference(), swapped)


# --- vision: efficientnet-lite0's gate on the logits of scikit-image's photos ---


def photo_logits(top1: dict[str, int]) -> tuple[list[str], np.ndarray]:
    from models.vision.efficientnet_lite0.spec import PHOTOS

    names = list(PHOTOS)
    logits = np.random.default_rng(0).standard_normal((len(names), 1000)).astype(np.float32)
    for row, name in enumerate(names):
        logits[row, top1.get(name, 0)] = 20.0
    return names, logits


def accepted_first(misses: int) -> dict[str, int]:
    """Each labelled photo's first accepted class as its top-1, but the first ``misses`` get class 0 (tench)."""
    from models.vision.efficientnet_lite0.spec import PHOTOS

    labelled = [name for name, accepted in PHOTOS.items() if accepted]
    return {name: 0 if i < misses else PHOTOS[name][0] for i, name in enumerate(labelled)}


LABELS = [f"class {i}" for i in range(1000)]


def test_vision_gate_records_the_share_it_measures() -> None:
    from models.vision.efficientnet_lite0.quality import score

    names, logits = photo_logits(accepted_first(misses=1))

    quality = score(names, logits, logits.copy(), LABELS)

    assert (quality["labelled_photos"], quality["labelled_top1_correct"]) == (5, 4)
    assert quality["reference_top5_identical"] == len(names)


def test_vision_gate_stops_a_reference_the_graph_disagrees_with() -> None:
    from models.vision.efficientnet_lite0.quality import score

    names, logits = photo_logits(accepted_first(misses=0))
    reference = logits.copy()
    reference[3, 7] += 0.01  # PyTorch computing something else

    with pytest.raises(BuildError, match=r"served logits differ from PyTorch's by up to 1\.00e-02"):
        score(names, logits, reference, LABELS)


def test_vision_gate_stops_a_model_that_names_too_few_photos_right() -> None:
    from models.vision.efficientnet_lite0.quality import score

    names, logits = photo_logits(accepted_first(misses=3))

    with pytest.raises(BuildError, match=r"accepted class for 2 of 5 labelled photos \(40%, at least 60% needed\)"):
        score(names, logits, logits.copy(), LABELS)


def test_the_accepted_camera_answers_are_cameras_not_what_the_model_sees() -> None:
    from models.vision.efficientnet_lite0.spec import PHOTOS

    # skimage.data.camera: 'Gray-level "camera" image.' The model's top-1 is tripod (872).
    assert set(PHOTOS["camera.png"]) == {759, 732} and 872 not in PHOTOS["camera.png"]


# --- speech: speech-commands' accuracy minimums, sphinx-en-us's transcript and measured files ---


@pytest.mark.real_model
@pytest.mark.filterwarnings("ignore:Mean of empty slice", "ignore:invalid value encountered")  # speakers absent
def test_speech_commands_gate_stops_a_graph_that_hears_silence_everywhere(tmp_path: Path) -> None:
    from models.speech.commands import build
    from models.speech.commands.data import Clips
    from models.speech.commands.quality import check_minimums, clip_quality
    from models.speech.commands.spec import ACCENTS, LABELS, SILENCE, TEST_VARIANTS

    version = build.build(STORE)
    checkout_domains()
    from aimass_speech.runtime import SpeechCommandsRuntime

    # The three windows samples.json keeps: a keyword, another word and silence (build._write_samples).
    samples = json.loads((version / "samples.json").read_text())
    labels = np.array([LABELS.index(label) for label in ("stop", "_unknown_", SILENCE)], dtype=np.int64)
    windows = np.array(samples["inputs"]["waveform"], dtype=np.float32)
    clips = Clips(windows, labels, (f"{ACCENTS[0]}+{TEST_VARIANTS[0]}",) * 3)

    def quality(directory: Path) -> dict[str, Any]:
        runtime = SpeechCommandsRuntime(ModelArtifact(read_manifest(directory), directory), SessionFactory(Settings()))
        runtime.load()
        measured = clip_quality(runtime, clips)
        return {"held_out": measured, "held_out_synthesizer": measured}

    check_minimums(quality(version))  # the built model hears all three right

    broken = broken_copy(version, tmp_path, favour_class(LABELS.index(SILENCE)))
    with pytest.raises(BuildError, match=r"held_out accuracy 0\.3333 is below the minimum 0\.9"):
        check_minimums(quality(broken))


def sphinx_version() -> Path:
    from models.speech.sphinx import build

    return Path(build.build(STORE))


@pytest.mark.real_model
def test_sphinx_gate_stops_a_transcript_that_is_not_the_sample_text() -> None:
    from aimass.serving.domains import runtime_class
    from models.speech.sphinx.build import check_transcript
    from models.speech.sphinx.spec import SAMPLE_TEXT

    version = sphinx_version()
    samples = np.array(json.loads((version / "samples.json").read_text())["inputs"]["waveform"][0], np.float32)
    artifact = ModelArtifact(read_manifest(version), version)
    runtime = runtime_class("speech", "pocketsphinx")(artifact, SessionFactory(Settings()))
    runtime.load()

    assert check_transcript(runtime, samples, SAMPLE_TEXT) == SAMPLE_TEXT
    with pytest.raises(BuildError, match="the runtime heard 'go forward ten meters' in flite's 'go back ten meters'"):
        check_transcript(runtime, samples, "go back ten meters")


@pytest.mark.real_model
def test_sphinx_gate_refuses_a_measurement_of_other_model_files(tmp_path: Path) -> None:
    from models.speech.sphinx.build import measured_quality

    work = tmp_path / "work"
    shutil.copytree(sphinx_version(), work)
    assert measured_quality(work)["summary"]  # quality.json was measured on these very files

    with (work / "acoustic" / "noisedict").open("a") as noise:
        noise.write("<sil> SIL\n")
    with pytest.raises(BuildError, match=r"quality\.json was measured on other model files"):
        measured_quality(work)


# --- rl: cartpole-ppo's mean return ---


@pytest.mark.real_model
def test_rl_gate_stops_a_policy_that_always_pushes_left(tmp_path: Path) -> None:
    from models.rl.cartpole import build
    from models.rl.cartpole.episodes import play
    from models.rl.cartpole.served import act_policy, served_runtime
    from models.rl.cartpole.spec import ACTIONS

    version = build.build(STORE)
    seeds = range(20_000, 20_003)
    build.check_returns("in-process", play(act_policy(served_runtime(version)), seeds))

    broken = broken_copy(version, tmp_path, favour_class(ACTIONS.index("push_left")))
    returns = play(act_policy(served_runtime(broken)), seeds)
    with pytest.raises(BuildError, match=r"mean return in-process is \d\.\d over 3 episodes; needs 475\.0"):
        build.check_returns("in-process", returns)


def test_rl_graph_check_stops_a_graph_that_is_not_the_pytorch_actor(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")  # a build tool; the rl export check compares the graph with PyTorch
    from models.rl.cartpole.export import export_onnx, verify_graph

    torch.manual_seed(0)
    layers = [torch.nn.Linear(4, 64), torch.nn.Linear(64, 64), torch.nn.Linear(64, 2)]
    actor = torch.nn.Sequential(layers[0], torch.nn.Tanh(), layers[1], torch.nn.Tanh(), layers[2])
    export_onnx(actor, tmp_path / "model.onnx")
    assert verify_graph(tmp_path / "model.onnx", actor) < 1e-5

    with torch.no_grad():
        layers[2].bias[0] += 0.01  # the reference is now another actor than the one exported
    with pytest.raises(BuildError, match=r"ONNX Runtime differs from the PyTorch actor by 1\.0\de-02 > 1e-05"):
        verify_graph(tmp_path / "model.onnx", actor)


# --- tensor: tensor-wine's agreement with scikit-learn and held-out accuracy ---


def negate_coefficients(graph: onnx.GraphProto) -> None:
    (classifier,) = [node for node in graph.node if node.op_type == "LinearClassifier"]
    (coefficients,) = [a for a in classifier.attribute if a.name == "coefficients"]
    coefficients.floats[:] = [-value for value in coefficients.floats]


@pytest.mark.real_model
def test_tensor_gate_stops_a_classifier_with_its_weights_flipped(tmp_path: Path) -> None:
    from models.tensor.wine import build

    version = build.build(STORE)
    _, rows, _, truth = build.wine_split()
    assert build.check_accuracy(build.served_runtime(version), rows, truth) >= 0.9

    broken = broken_copy(version, tmp_path, negate_coefficients)
    with pytest.raises(BuildError, match=r"held-out accuracy 0\.\d+ is below 0\.9"):
        build.check_accuracy(build.served_runtime(broken), rows, truth)


@pytest.mark.real_model
def test_tensor_gate_stops_a_reference_the_graph_disagrees_with() -> None:
    from models.tensor.wine import build

    version = build.build(STORE)
    _, rows, _, _ = build.wine_split()
    runtime = build.served_runtime(version)
    served = runtime.predict({"features": rows}).outputs["probabilities"]
    assert build.check_reference(runtime, rows, served) == 0.0

    with pytest.raises(BuildError, match=r"the graph differs from scikit-learn by .* \(at most 1e-05\)"):
        build.check_reference(runtime, rows, np.roll(served, 1, axis=1))


# --- llm: smollm2's agreement with its fp32 reference, facts, and the API adding nothing ---

WORDS = ["<pad>", "paris", "is", "the", "capital", "rome", "blue", "sky"]


def llm_measure(got: list[list[int]], want: list[list[int]], *, reference_facts: int = 2) -> dict[str, Any]:
    """What build.py hands the gate: compare() of the graph's answers with the reference's (two factual
    questions, both answered right by the graph), and how many facts the reference answered."""
    from models.llm.smollm2.quality import Answers, EvalSet, compare

    tokenizer = Tokenizer(WordLevel({word: i for i, word in enumerate(WORDS)}, unk_token="<pad>"))
    tokenizer.pre_tokenizer = Whitespace()
    evals = EvalSet(prompts=[[3], [6]], questions=[[4], [4]], answers=["paris", "paris"])
    questions = [[1, 2, 3, 4], [1, 2, 3, 4]]  # "paris is the capital"
    measured = compare(Answers(got, questions), Answers(want, questions), evals, tokenizer)
    measured["reference"] = {"facts_correct": reference_facts}
    return measured


def test_llm_gate_passes_answers_identical_to_the_reference() -> None:
    from models.llm.smollm2.build import check_quality

    check_quality(llm_measure([[1, 2, 3], [6, 7]], [[1, 2, 3], [6, 7]]))


def test_llm_gate_stops_answers_that_part_from_the_reference() -> None:
    from models.llm.smollm2.build import check_quality

    measured = llm_measure([[1, 5, 5], [7, 6]], [[1, 2, 3], [6, 7]])

    with pytest.raises(BuildError, match=r"greedy answers agree with the reference on 16\.7%; 65% needed"):
        check_quality(measured)


def test_llm_gate_stops_a_graph_that_answers_fewer_facts_than_the_reference() -> None:
    from models.llm.smollm2.build import check_quality

    measured = llm_measure([[1, 2, 3], [6, 7]], [[1, 2, 3], [6, 7]], reference_facts=4)

    with pytest.raises(BuildError, match="2 factual questions answered, the reference answers 4"):
        check_quality(measured)


def test_llm_gate_stops_a_served_path_that_answers_otherwise() -> None:
    from models.llm.smollm2.build import check_served

    measured = llm_measure([[1, 2, 3], [6, 7]], [[1, 2, 3], [6, 7]])
    measured["through_api"] = {**measured, "identical_answers": 1}

    with pytest.raises(BuildError, match="through the API, identical_answers is 1; the graph's own loop gives 2"):
        check_served(measured)
