"""What this model is: the numbers the training, the import, the server and the card agree on."""

from __future__ import annotations

NAME = "tensor-wine"
VERSION = "1"
DOMAIN = "tensor"
# scikit-learn's wine data: 13 measurements of a wine's chemistry, and which of three cultivars it came from.
FEATURES = (
    "alcohol",
    "malic_acid",
    "ash",
    "alcalinity_of_ash",
    "magnesium",
    "total_phenols",
    "flavanoids",
    "nonflavanoid_phenols",
    "proanthocyanins",
    "color_intensity",
    "hue",
    "od280/od315_of_diluted_wines",
    "proline",
)
LABELS = ("class_0", "class_1", "class_2")  # the data set's own names; sorted, as scikit-learn numbers them

# Standardise each column, then a multinomial logistic regression (C: the inverse of its L2 penalty).
C = 1.0
SOLVER = "newton-cg"
SEED = 0
TEST_FRACTION = 0.25  # held out, stratified: the quality the manifest records is measured on these only

MIN_ACCURACY = 0.9  # the build fails below this held-out accuracy, measured through the served path
SAMPLE_COUNT = 4  # held-out rows kept as the validation samples
MAX_REFERENCE_DIFF = 1e-5  # probabilities, ONNX Runtime against scikit-learn
