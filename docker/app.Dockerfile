# One image for everything that runs our code: the Spark master and workers
# (pyspark's bundled Spark distribution), the streaming job and the other jobs
# (Spark drivers), and the Streamlit dashboard.
#
#   docker build -f docker/app.Dockerfile -t fraud-ml-app:latest .
#
# Python 3.11 + Java 17 (what setup.cfg and pyspark 4.2 / delta-spark 4.4 need),
# the project installed into /opt/venv with the [dashboard,models] extras, and the
# Kafka-source + Delta jars resolved by Maven at BUILD time into
# /app/var/jars/spark (spark.jars_dir in conf/cluster.yaml), so containers never
# download anything at run time.
#
# The build context is the repository root; docker/app.Dockerfile.dockerignore
# (BuildKit reads it next to this file) keeps .venv/, var/, .git/ ... out of it.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------- runtime base
FROM ${PYTHON_IMAGE} AS base
ENV DEBIAN_FRONTEND=noninteractive
# bookworm ships openjdk-17 (trixie, the newer python:*-slim default, does not).
# man1 must exist or the JRE's postinst fails on slim images.
RUN mkdir -p /usr/share/man/man1 \
 && apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless curl procps tini \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s "$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")" /usr/lib/jvm/java-17
ENV JAVA_HOME=/usr/lib/jvm/java-17 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# ---------------------------------------------------------------- build stage
FROM base AS build
# The JDK's compiler builds spark/udf (the alerts query's Java functions); the final image keeps the JRE.
RUN apt-get update \
 && apt-get install -y --no-install-recommends maven openjdk-17-jdk-headless \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
# Dependencies first (cached while only code changes), then the JVM jars.
COPY setup.cfg pyproject.toml ./
COPY fraud_ml ./fraud_ml
# [dashboard]: Streamlit; [models]: CatBoost/LightGBM for the model zoo of jobs/train.py.
# Add gan (PyTorch, ~2 GB) for jobs/synthesize.py --method wgan: --build-arg EXTRAS=dashboard,models,gan
ARG EXTRAS=dashboard,models
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install -e ".[${EXTRAS}]"
COPY spark/pom.xml ./spark/pom.xml
COPY spark/udf ./spark/udf
# fraud_ml.local.jars: Maven -Pspark / -Pkafka into /app/var/jars, pruning the jars pyspark ships,
# then spark/udf compiled into /app/var/jars/spark.
RUN --mount=type=cache,target=/root/.m2 \
    python -m fraud_ml.local.jars resolve \
 && python -m fraud_ml.local.jars --csv | tr ',' '\n' | wc -l

# ---------------------------------------------------------------- final image
FROM base AS app
ARG APP_UID=10001
RUN groupadd --gid ${APP_UID} app \
 && useradd --uid ${APP_UID} --gid app --create-home --shell /bin/bash app \
 # /data is the shared volume (Delta tables + checkpoints); a fresh named volume
 # copies this folder's ownership, so the non-root user can write to it.
 && mkdir -p /data/delta /data/checkpoints /tmp/spark-work \
 && chown -R app:app /data /tmp/spark-work
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app/var/jars /app/var/jars
# The code: fraud_ml (installed editable, so /app/fraud_ml is what runs), jobs, conf, dashboard.
COPY . /app
# Pass-through for compose commands; `driver` / `executor` for Spark on Kubernetes.
COPY docker/entrypoint.sh /usr/local/bin/fraud-ml-entrypoint
# Code stays root-owned (read-only for the app user); the folder itself is writable
# for what Spark creates in its working directory (e.g. spark-warehouse/).
RUN chown app:app /app
ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    PYTHONPATH=/app \
    SPARK_HOME=/opt/venv/lib/python3.11/site-packages/pyspark \
    PYSPARK_PYTHON=/opt/venv/bin/python \
    PYSPARK_DRIVER_PYTHON=/opt/venv/bin/python \
    FRAUD_ML_CONF=/app/conf/cluster.yaml \
    FRAUD_ML_JARS_DIR=/app/var/jars/spark \
    HOME=/home/app
WORKDIR /app
# Fail the build, not the first container, if the environment is incomplete.
RUN python -c "import fraud_ml.io.spark, fraud_ml.local.jars as j; j.spark_jars('var/jars/spark'); j.kafka_classpath('var/jars/kafka')" \
 && test -x "$SPARK_HOME/bin/spark-class" && java -version \
 && chmod 0755 /usr/local/bin/fraud-ml-entrypoint && rm -rf /app/docker
USER app
ENTRYPOINT ["/usr/local/bin/fraud-ml-entrypoint"]
CMD ["python", "-m", "fraud_ml.local.jars", "list"]
