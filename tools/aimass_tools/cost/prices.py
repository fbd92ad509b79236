"""Published on-demand prices the cost model uses: US East (N. Virginia), x86, USD, as of the record's date.

Kept in one place so that a price change is one edit, and every figure ``aimass cost`` prints names its source.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

# AWS Lambda (aws.amazon.com/lambda/pricing): duration per GB-second, first tier, x86; requests per million.
LAMBDA_PER_GB_SECOND: Final = 0.0000166667
LAMBDA_PER_MILLION_REQUESTS: Final = 0.20
LAMBDA_BILLING_MS: Final = 1  # duration is rounded up to the millisecond
# Provisioned concurrency: per GB-second provisioned, and the duration price of the requests it serves.
LAMBDA_PROVISIONED_PER_GB_SECOND: Final = 0.0000041667
LAMBDA_PROVISIONED_DURATION_PER_GB_SECOND: Final = 0.0000097222
# Amazon API Gateway REST APIs (aws.amazon.com/api-gateway/pricing): the first 333 million requests a month.
API_GATEWAY_REST_PER_MILLION: Final = 3.50

# Amazon SageMaker Serverless Inference (aws.amazon.com/sagemaker/pricing): per second of inference at each
# memory size it offers (1-6 GB), billed by the millisecond; plus each GB of request and response data.
SAGEMAKER_SERVERLESS_PER_SECOND: Final = MappingProxyType(
    {1024: 0.0000200, 2048: 0.0000400, 3072: 0.0000600, 4096: 0.0000800, 5120: 0.0001000, 6144: 0.0001200}
)
SAGEMAKER_DATA_PER_GB: Final = 0.016  # in and out alike

# Memory sizes the table shows for Lambda: the steps where the CPU share changes (1,769 MB is one full vCPU), and
# the sizes people pick.
LAMBDA_SIZES_MB: Final = (512, 1024, 1769, 2048, 3008, 3538, 5307, 7076, 10240)
