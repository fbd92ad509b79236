"""What a request costs: Lambda at each memory size from the bench's measurements, and SageMaker Serverless
Inference on paper (``aimass cost``)."""
