"""The explicit pulumi-aws provider every AWS resource of the program uses.

It carries the same region and endpoint as the program's reads and the dynamic providers
(components/aws.py), so an emulator endpoint redirects every half of the program, not some.
"""

import pulumi_aws as aws

from components.aws import AwsTarget

# Every service whose resources the program creates or whose API the pulumi-aws provider calls for them.
SERVICES = ("autoscaling", "cloudwatch", "ec2", "elb", "elbv2", "iam", "sts")


def aws_provider(name: str, target: AwsTarget) -> aws.Provider:
    if not target.endpoint_url:
        return aws.Provider(name, region=target.region)
    # An emulator has no account, metadata service or credential check of its own.
    return aws.Provider(
        name,
        region=target.region,
        endpoints=[{service: target.endpoint_url for service in SERVICES}],
        skip_credentials_validation=True,
        skip_metadata_api_check=True,
        skip_region_validation=True,
        skip_requesting_account_id=True,
    )
