"""Model import: a trained ONNX graph becomes a served model version with no domain written for it.

``graph`` reads what a file declares (its tensors, dynamic axes, opsets and operators) without the ``onnx``
package, which no function image carries; ``support`` holds it to what the serving ONNX Runtime runs;
``signature`` to what the V2 protocol and batching can serve; ``memory`` to the serving function's memory;
``fit`` finds the task its shape matches (an image or tabular classifier, a text embedder); ``samples``
synthesizes inputs and records the outputs a deployment must reproduce; ``importer`` writes the version's
folder (graph, samples, manifest) for the store to publish. The CLI (``aimass models import``) and the
management API (``/v1/admin/models``) both call ``importer``, so a file is checked and described the same way
from a shell and from a training pipeline.

Every refusal is an ``UnsupportedModel`` (400) or a ``ModelTooLarge`` (413) whose message names the problem
and says how to fix it.
"""
