"""LitServe serving the same model: ``POST /predict {"input": "..."}``, inference in worker processes, with
LitServe's own dynamic batching when ``--batch`` is above 1. Runs in build/peers-venv (``make bench-peers``).

    build/peers-venv/bin/python -m bench.peers.litserve_app --port 8001 --workers 2 [--batch 8]
"""

import argparse
from typing import Any

import litserve as ls

from bench.peers.embedder import Embedder


class MiniLM(ls.LitAPI):  # type: ignore[misc]
    def setup(self, device: str) -> None:
        self.embedder = Embedder()

    def decode_request(self, request: dict[str, Any]) -> str:
        return str(request["input"])

    def predict(self, texts: Any) -> Any:
        # Batched, LitServe hands a list of decoded requests and unbatches the rows; else one text.
        return self.embedder.embed(texts) if isinstance(texts, list) else self.embedder.embed([texts])[0]

    def encode_response(self, vector: Any) -> dict[str, Any]:
        return {"embedding": vector.tolist()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--batch-timeout", type=float, default=0.002)
    args = parser.parse_args()
    api = MiniLM(max_batch_size=args.batch, batch_timeout=args.batch_timeout if args.batch > 1 else 0.0)
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=args.workers, healthcheck_path="/v2/health/ready")
    server.run(port=args.port, host="127.0.0.1", generate_client_file=False, log_level="warning")


if __name__ == "__main__":
    main()
