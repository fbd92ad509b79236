"""AI Mass operator tools: the ``aimass`` command, quantized versions, the Docker-free payload assembler.

None of it ships: no function image copies ``tools/``, so what these need (typer, rich, uvicorn, onnx) stays
out of every image. The tools import the serving core (``aimass``); the core never imports them.
"""
