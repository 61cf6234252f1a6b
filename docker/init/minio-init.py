"""One-shot: create the MLflow artifact bucket in MinIO (idempotent) and keep it private.

Runs in the MLflow image (boto3); credentials come from the environment (.env), never from here.
"""

import os
import sys
import time

import boto3
from botocore.exceptions import ClientError, EndpointConnectionError

url = os.environ.get("MINIO_URL", "http://minio:9000")
bucket = os.environ["MLFLOW_BUCKET"]
s3 = boto3.client(
    "s3",
    endpoint_url=url,
    aws_access_key_id=os.environ["MINIO_ROOT_USER"],
    aws_secret_access_key=os.environ["MINIO_ROOT_PASSWORD"],
    region_name="us-east-1",
)
for _ in range(30):
    try:
        s3.list_buckets()
        break
    except EndpointConnectionError:
        time.sleep(2)
else:
    sys.exit(f"minio-init: MinIO not reachable at {url}")
try:
    s3.create_bucket(Bucket=bucket)
except ClientError as exc:
    if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
        raise
try:
    s3.delete_bucket_policy(Bucket=bucket)  # no anonymous access (a fresh bucket has no policy)
except ClientError as exc:
    if exc.response["Error"]["Code"] != "NoSuchBucketPolicy":
        raise
print(f"minio-init: bucket {bucket} ready", flush=True)
