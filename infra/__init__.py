"""AWS CDK app that deploys AI Mass: one container-image Lambda function per model domain behind API Gateway."""
