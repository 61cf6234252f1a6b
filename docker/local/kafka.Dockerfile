# Stand-in for apache/kafka:4.1.1: the same broker (the jars of spark/pom.xml -Pkafka, the
# classpath `make jars` gives the embedded broker), configured the same way from KAFKA_* variables.
#   docker build -f docker/local/kafka.Dockerfile -t fraud-ml-local/kafka:4.1.1 .   (repository root)
ARG DEBIAN_IMAGE=debian:bookworm-slim

FROM ${DEBIAN_IMAGE} AS jars
ENV DEBIAN_FRONTEND=noninteractive
RUN mkdir -p /usr/share/man/man1 \
 && apt-get update \
 && apt-get install -y --no-install-recommends maven openjdk-17-jre-headless \
 && rm -rf /var/lib/apt/lists/*
COPY spark/pom.xml /build/pom.xml
RUN mvn -q -B -f /build/pom.xml -Pkafka -Djars.dir=/build/jars package

FROM ${DEBIAN_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive
RUN mkdir -p /usr/share/man/man1 \
 && apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 1000 --create-home appuser \
 && mkdir -p /var/lib/kafka/data /opt/kafka/config \
 && chown -R appuser /var/lib/kafka /opt/kafka/config
COPY --from=jars /build/jars/kafka /opt/kafka/libs
COPY docker/local/kafka/ /opt/kafka/bin/
RUN chmod 0755 /opt/kafka/bin/*.sh
USER appuser
ENTRYPOINT ["/opt/kafka/bin/run.sh"]
