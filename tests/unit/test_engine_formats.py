"""Models of another engine than ONNX Runtime: the manifest's engine format and parts, the domain's runtime per
format, engine files handed over as in-memory files, and validation samples with BYTES outputs."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from aimass.errors import ModelLoadError
from aimass.serving.domains import checkout_domains, runtime_class
from aimass.serving.memory_files import MemoryFiles
from aimass.serving.runtime import ModelRuntime, Prediction, Tensor
from aimass.serving.session import SessionFactory
from aimass.serving.validation import validate
from aimass.settings import Settings
from aimass.store.base import ModelArtifact
from aimass.store.manifest import EngineSpec, ModelManifest, TensorSpec, file_entry

checkout_domains()
from aimass_speech.runtime import SpeechCommandsRuntime  # noqa: E402
from aimass_speech.sphinx_runtime import SphinxRuntime  # noqa: E402

TEXT = TensorSpec(name="text", datatype="BYTES", shape=(1,))
WAVE = TensorSpec(name="waveform", datatype="FP32", shape=(1, -1))


def manifest(directory: Path, **engine: object) -> ModelManifest:
    for name in ("lm.bin", "acoustic/mdef", "samples.json"):
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        if not (directory / name).exists():
            (directory / name).write_bytes(name.encode())
    spec = {"format": "pocketsphinx", "file": "lm.bin", "parts": {"mdef": "acoustic/mdef"}, **engine}
    return ModelManifest(
        name="echo",
        version="1",
        domain="speech",
        task="transcription",
        files=tuple(file_entry(directory, n) for n in ("acoustic/mdef", "lm.bin", "samples.json")),
        engine=EngineSpec.model_validate({**spec, "inputs": [WAVE.model_dump()], "outputs": [TEXT.model_dump()]}),
        inputs=(WAVE,),
        outputs=(TEXT,),
        validation="samples.json",
    )


def test_engine_parts_must_be_listed_files(tmp_path: Path) -> None:
    assert manifest(tmp_path).engine.parts == {"mdef": "acoustic/mdef"}
    with pytest.raises(ValidationError, match=r"engine parts \['dict=words.dict'\] are not listed in files"):
        manifest(tmp_path, parts={"mdef": "acoustic/mdef", "dict": "words.dict"})
    with pytest.raises(ValidationError, match="format"):
        manifest(tmp_path, format="tensorflow")


def test_a_domain_maps_engine_formats_to_runtimes() -> None:
    assert runtime_class("speech") is SpeechCommandsRuntime
    assert runtime_class("speech", "onnx") is SpeechCommandsRuntime
    assert runtime_class("speech", "pocketsphinx") is SphinxRuntime
    # A domain that serves only ONNX models refuses another engine's, saying which formats it serves.
    with pytest.raises(
        ModelLoadError, match="domain 'text' serves no models of engine format 'pocketsphinx'; formats it serves: onnx"
    ):
        runtime_class("text", "pocketsphinx")


def test_engine_files_are_in_memory_and_go_when_closed(tmp_path: Path) -> None:
    # GIVEN a version whose engine reads two files by path
    runtime = Echo(ModelArtifact(manifest(tmp_path), tmp_path), SessionFactory(Settings()))
    # WHEN its engine files are opened
    with runtime.engine_files() as files:
        paths = dict(files.paths)
        # THEN each is a path of this process's own in-memory file holding the checked bytes, nowhere on disk
        assert set(paths) == {"file", "mdef"} and all(p.startswith("/proc/self/fd/") for p in paths.values())
        assert Path(paths["mdef"]).read_bytes() == b"acoustic/mdef"
        assert "memfd:" in os.readlink(paths["file"])
    # AND once closed they are gone
    assert not any(Path(p).exists() for p in paths.values())


def test_a_file_whose_digest_fails_never_becomes_an_engine_file(tmp_path: Path) -> None:
    runtime = Echo(ModelArtifact(manifest(tmp_path), tmp_path), SessionFactory(Settings()))
    (tmp_path / "acoustic/mdef").write_bytes(b"something else")
    with pytest.raises(ModelLoadError, match="does not match the manifest"):
        runtime.engine_files()


def test_memory_files_take_large_contents_whole() -> None:
    big = bytes(range(256)) * (1 << 16)  # 16 MiB: more than one write may take
    with MemoryFiles({"big": lambda: big}, label="test") as files:
        assert Path(files.paths["big"]).read_bytes() == big


class Echo(ModelRuntime):
    """Answers the text its samples expect, or another one."""

    answer = "go forward ten meters"

    def load(self) -> None:
        return None

    def predict(self, inputs: Mapping[str, Tensor]) -> Prediction:
        return Prediction(outputs={"text": np.array([self.answer], dtype=object)})


@pytest.mark.parametrize(("answer", "passes"), [("go forward ten meters", True), ("go forward and meters", False)])
def test_bytes_outputs_are_validated_exactly(tmp_path: Path, answer: str, passes: bool) -> None:
    document = {"inputs": {"waveform": [[0.0, 0.5, -0.5]]}, "outputs": {"text": ["go forward ten meters"]}}
    (tmp_path / "samples.json").write_text(json.dumps(document))
    runtime = Echo(ModelArtifact(manifest(tmp_path), tmp_path), SessionFactory(Settings()))
    runtime.answer = answer
    if passes:
        validate(runtime)
        return
    with pytest.raises(ModelLoadError, match="output 'text' is \\['go forward and meters'\\]") as refused:
        validate(runtime)
    assert refused.value.public == "its validation samples did not match (output 'text')"
