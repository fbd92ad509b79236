"""The network of the batch compute environments: a VPC of public subnets, no NAT, gateway endpoints, flow logs."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct


class BatchNetwork(Construct):
    """A two-AZ VPC of public subnets only, with S3 and DynamoDB gateway endpoints and flow logs.

    Public subnets and no NAT gateway: the batch fallback scales to zero, and a NAT gateway is paid by the hour
    whether a job runs or not (and by the gigabyte through it). Instances and Fargate tasks get a public address for
    egress only (ECR, CloudWatch Logs, Batch, KMS); the security group admits no inbound traffic, so nothing can
    reach them. Shard data never leaves the AWS network through that address: the gateway endpoints (free) route S3
    (input files, chunks, models) and DynamoDB (the jobs and metering tables) inside the VPC.

    Flow logs record accepted and rejected traffic in a log group kept ``log_retention``.
    """

    def __init__(self, scope: Construct, construct_id: str, *, log_retention: logs.RetentionDays) -> None:
        super().__init__(scope, construct_id)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            # An environment-agnostic stack sees two AZs; two are enough to ride out one, and Batch spreads over both.
            max_azs=2,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="Public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=20),
            ],
        )
        self.flow_log_group = logs.LogGroup(
            self, "FlowLogs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(self.flow_log_group),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )
        self.vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3)
        self.vpc.add_gateway_endpoint("DynamoDb", service=ec2.GatewayVpcEndpointAwsService.DYNAMODB)
        self.security_group = ec2.SecurityGroup(
            self,
            "Workers",
            vpc=self.vpc,
            description="AI Mass batch workers: no inbound traffic; outbound to AWS APIs and ECR",
            allow_all_outbound=True,
        )
        self.subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC)
