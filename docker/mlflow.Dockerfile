# The MLflow tracking server of the compose stack: the MLflow release pinned in setup.cfg with
# the PostgreSQL driver for the backend store (psycopg 3: the SQLAlchemy MLflow installs maps
# postgresql:// to it; with psycopg2 only the server failed "No module named 'psycopg'") and boto3
# for the MinIO (S3) artifact store it proxies (boto3 also runs docker/init/minio-init.py).
#
#   docker build -f docker/mlflow.Dockerfile -t fraud-ml-mlflow:3.17.2 docker/
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE}
RUN python -m venv /opt/mlflow \
 && /opt/mlflow/bin/pip install --no-cache-dir "mlflow==3.17.2" "psycopg[binary]>=3.2,<4" "boto3>=1.34,<2"
ENV PATH=/opt/mlflow/bin:$PATH PYTHONUNBUFFERED=1
EXPOSE 5000
CMD ["mlflow", "server", "--host", "0.0.0.0", "--port", "5000"]
