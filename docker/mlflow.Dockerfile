# The MLflow tracking server of the compose stack: the official image (same
# version as the client pinned in setup.cfg) plus the PostgreSQL driver for the
# backend store and boto3 for the MinIO (S3) artifact store it proxies.
#
#   docker build -f docker/mlflow.Dockerfile -t fraud-ml-mlflow:3.17.2 docker/
FROM ghcr.io/mlflow/mlflow:v3.17.2
RUN pip install --no-cache-dir "psycopg2-binary>=2.9,<3" "boto3>=1.34,<2"
EXPOSE 5000
CMD ["mlflow", "server", "--host", "0.0.0.0", "--port", "5000"]
