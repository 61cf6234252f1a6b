# Stand-in for python:3.11-slim-bookworm: Debian bookworm's Python 3.11 with venv, `python` on PATH.
#   docker build -f docker/local/python.Dockerfile --build-arg DEBIAN_IMAGE=fraud-ml-local/debian:bookworm \
#     -t fraud-ml-local/python:3.11-bookworm docker/local
ARG DEBIAN_IMAGE=debian:bookworm-slim
FROM ${DEBIAN_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s /usr/bin/python3 /usr/local/bin/python
# pip's own CA bundle (certifi) knows no CA the base image added; use the system's.
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
CMD ["python"]
