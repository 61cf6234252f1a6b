# Stand-in for quay.io/minio/minio: the server built from its Go module by fraud_ml.ops.compose
# (`go install github.com/minio/minio@<version>` into var/compose/bin), and an `mc ready local`
# for the compose healthcheck (the only mc command the stack runs in this image).
#   docker build -f docker/local/minio.Dockerfile -t fraud-ml-local/minio var/compose   (holds bin/minio + mc)
ARG DEBIAN_IMAGE=debian:bookworm-slim
FROM ${DEBIAN_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data
COPY bin/minio /usr/bin/minio
COPY mc /usr/bin/mc
RUN chmod 0755 /usr/bin/minio /usr/bin/mc
EXPOSE 9000 9001
ENTRYPOINT ["/usr/bin/minio"]
