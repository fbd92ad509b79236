"""The served path, exactly as the server runs it: the vision domain's own codecs, then one engine call.

The preprocessing is imported from the domain package (``functions/vision/aimass_vision/codecs.py``), not
copied, so the build measures what a request gets.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

from aimass.serving.domains import checkout_domains
from models.vision.efficientnet_lite0.spec import ENGINE_INPUT, OUTPUT, PREPROCESSING, SAMPLE_JPEG_QUALITY

checkout_domains()  # puts functions/vision on the import path, as the server finds it in a checkout

from aimass_vision.codecs import VisionPreprocessing, decode, network_input  # noqa: E402

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import onnxruntime as ort

PRE = VisionPreprocessing.model_validate(PREPROCESSING)


def photo_files() -> Path:
    """The folder of photos scikit-image ships."""
    import skimage.data

    return Path(skimage.data.__file__).parent


def network_batch(blobs: list[bytes]) -> npt.NDArray[np.float32]:
    """Encoded images to the FP32 [n, 3, 224, 224] batch the server feeds the graph."""
    return network_input((decode(blob, PRE, where=f"image[{i}]") for i, blob in enumerate(blobs)), PRE)


def served_logits(session: ort.InferenceSession, blobs: list[bytes]) -> npt.NDArray[np.float32]:
    (logits,) = session.run([OUTPUT], {ENGINE_INPUT: network_batch(blobs)})
    return logits  # type: ignore[no-any-return]


def as_jpeg(blob: bytes) -> bytes:
    """A photo re-encoded as JPEG (deterministic for a given Pillow), the form samples.json carries."""
    from PIL import Image

    out = io.BytesIO()
    with Image.open(io.BytesIO(blob)) as image:
        image.convert("RGB").save(out, format="JPEG", quality=SAMPLE_JPEG_QUALITY)
    return out.getvalue()
