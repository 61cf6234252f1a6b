#!/bin/sh
# One-shot: create the MLflow artifact bucket in MinIO (idempotent) and keep it private.
# Runs in the minio/mc image; credentials come from the environment (.env), never from here.
set -eu
: "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}" "${MLFLOW_BUCKET:?}"
MINIO_URL="${MINIO_URL:-http://minio:9000}"

i=0
until mc alias set store "$MINIO_URL" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null 2>&1; do
  i=$((i + 1))
  if [ "$i" -ge 30 ]; then echo "minio-init: MinIO not reachable at $MINIO_URL" >&2; exit 1; fi
  sleep 2
done
mc mb --ignore-existing "store/$MLFLOW_BUCKET"
mc anonymous set none "store/$MLFLOW_BUCKET"
echo "minio-init: bucket $MLFLOW_BUCKET ready"
