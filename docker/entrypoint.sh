#!/bin/bash
# Entrypoint of the app image (docker/app.Dockerfile).
#
#   <any command>   run it under tini (compose: spark-class ..., python jobs/..., streamlit ...)
#   driver ...      Spark on Kubernetes: the driver pod (spark-submit --deploy-mode cluster)
#   executor        Spark on Kubernetes: an executor pod
#
# pyspark's wheel has no Kubernetes entrypoint, so this implements the contract of
# Spark's own kubernetes/dockerfiles/spark/entrypoint.sh (Apache-2.0): the same
# first arguments and SPARK_* variables set by the Kubernetes scheduler backend.
# The image's Kafka-source + Delta jars (FRAUD_ML_JARS_DIR) are put on the driver
# and executor classpaths, so `--jars` is not needed on Kubernetes.
# FRAUD_ML_ENTRYPOINT_DRY_RUN=1 prints the command instead of running it (tests).
set -euo pipefail

SPARK_HOME="${SPARK_HOME:?SPARK_HOME must point at the pyspark installation}"
JARS_DIR="${FRAUD_ML_JARS_DIR:-/app/var/jars/spark}"

# OpenShift-style random UIDs: give the user a passwd entry (Spark/Hadoop look it up).
if ! getent passwd "$(id -u)" >/dev/null 2>&1 && [ -w /etc/passwd ]; then
  echo "$(id -u):x:$(id -u):$(id -g):${SPARK_USER_NAME:-anonymous uid}:${HOME:-/tmp}:/bin/false" >> /etc/passwd
fi

classpath="${SPARK_HOME}/jars/*:${JARS_DIR}/*"
[ -n "${SPARK_CLASSPATH:-}" ] && classpath="${SPARK_CLASSPATH}:${classpath}"
[ -n "${SPARK_EXTRA_CLASSPATH:-}" ] && classpath="${classpath}:${SPARK_EXTRA_CLASSPATH}"
[ -n "${SPARK_CONF_DIR:-}" ] && classpath="${SPARK_CONF_DIR}:${classpath}"
[ -n "${HADOOP_CONF_DIR:-}" ] && classpath="${HADOOP_CONF_DIR}:${classpath}"

case "${1:-}" in
  driver)
    shift
    cmd=("${SPARK_HOME}/bin/spark-submit"
         --conf "spark.driver.bindAddress=${SPARK_DRIVER_BIND_ADDRESS:?set by Spark on Kubernetes}"
         --conf "spark.driver.extraClassPath=${JARS_DIR}/*"
         --deploy-mode client
         "$@")
    ;;
  executor)
    shift
    # SPARK_JAVA_OPT_0, _1, ... in numeric order: the executor's JVM options.
    java_opts=()
    while IFS= read -r opt; do
      [ -n "$opt" ] && java_opts+=("$opt")
    done < <(env | grep '^SPARK_JAVA_OPT_' | sort -t_ -k4 -n | sed 's/^[^=]*=//')
    cmd=("${JAVA_HOME:-/usr}/bin/java" "${java_opts[@]}"
         "-Xms${SPARK_EXECUTOR_MEMORY:?}" "-Xmx${SPARK_EXECUTOR_MEMORY}"
         -cp "${classpath}${SPARK_DIST_CLASSPATH:+:${SPARK_DIST_CLASSPATH}}"
         org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend
         --driver-url "${SPARK_DRIVER_URL:?}"
         --executor-id "${SPARK_EXECUTOR_ID:?}"
         --cores "${SPARK_EXECUTOR_CORES:?}"
         --app-id "${SPARK_APPLICATION_ID:?}"
         --hostname "${SPARK_EXECUTOR_POD_IP:?}"
         --resourceProfileId "${SPARK_RESOURCE_PROFILE_ID:-0}"
         --podName "${SPARK_EXECUTOR_POD_NAME:?}")
    ;;
  "")
    echo "usage: <command> | driver <spark-submit args> | executor" >&2
    exit 64
    ;;
  *)
    cmd=("$@")
    ;;
esac

if [ "${FRAUD_ML_ENTRYPOINT_DRY_RUN:-0}" = "1" ]; then
  printf '%s\n' "${cmd[@]}"
  exit 0
fi
exec /usr/bin/tini -s -- "${cmd[@]}"
