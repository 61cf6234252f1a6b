#!/bin/sh
# Refuse to start the stack with the placeholder secrets of .env.example (or empty ones).
status=0
for var in POSTGRES_PASSWORD MINIO_ROOT_PASSWORD; do
  eval "value=\${$var:-}"
  case "$value" in
    ""|change-me*)
      echo "error: $var in .env is still the change-me placeholder of .env.example (or empty): set a real secret" >&2
      status=1 ;;
  esac
done
# MinIO refuses root passwords shorter than 8 characters; say so before it does.
if [ "${#MINIO_ROOT_PASSWORD}" -lt 8 ]; then
  echo "error: MINIO_ROOT_PASSWORD must have at least 8 characters" >&2
  status=1
fi
[ "$status" -eq 0 ] && echo "secrets-check: no placeholder secrets"
exit "$status"
