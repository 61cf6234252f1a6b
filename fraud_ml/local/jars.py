"""Resolve the JVM artifacts with Maven into git-ignored folders (``spark/pom.xml``).

``spark``: the Kafka source and Delta Lake jars Spark loads as local ``spark.jars``;
jars that pyspark already ships (Scala, Jackson, Hadoop, ...) are pruned so there is
one copy of each library on the classpath. ``kafka``: the KRaft broker's classpath.
Then the project's own Spark functions (``spark/udf``: the alerts query's booster margin and
validation fast path) are compiled into the ``spark`` folder, on every run (Maven rebuilds only
what changed).
Once resolved, everything works offline.

Usage: ``python -m fraud_ml.local.jars resolve`` | ``python -m fraud_ml.local.jars --csv``.
"""

from __future__ import annotations

import argparse
import logging
import re
import shutil
import subprocess
import sys
from pathlib import Path

from fraud_ml.config import PROJECT_ROOT
from fraud_ml.errors import JarsError

log = logging.getLogger(__name__)

POM = PROJECT_ROOT / "spark" / "pom.xml"
UDF_POM = PROJECT_ROOT / "spark" / "udf" / "pom.xml"
UDF_ARTIFACT = "fraud-ml-udf"
DEFAULT_JARS_ROOT = PROJECT_ROOT / "var" / "jars"
PROFILES = ("spark", "kafka")
# Must be present after resolution, or Spark/Kafka cannot start.
REQUIRED = {
    "spark": ("spark-sql-kafka-0-10_2.13", "delta-spark_4.2_2.13", "delta-storage", "kafka-clients"),
    "kafka": ("kafka_2.13", "kafka-server", "log4j-core"),
}
_JAR_NAME = re.compile(r"^(?P<artifact>.+?)-(?P<version>\d+(?:\.\d+)*(?:[.-][A-Za-z0-9]+)*)\.jar$")


def artifact_name(jar_file: str) -> str:
    """``delta-storage-4.4.0.jar`` -> ``delta-storage``."""
    match = _JAR_NAME.match(jar_file)
    return match.group("artifact") if match else jar_file.removesuffix(".jar")


def pyspark_jar_artifacts() -> set[str]:
    """Artifact names of the jars bundled with the installed pyspark."""
    import pyspark

    jars_dir = Path(pyspark.__file__).parent / "jars"
    return {artifact_name(p.name) for p in jars_dir.glob("*.jar")}


def prune_bundled(jars_dir: Path, bundled: set[str]) -> list[str]:
    """Delete jars whose artifact pyspark already ships; return the removed names."""
    removed = []
    for jar in sorted(jars_dir.glob("*.jar")):
        if artifact_name(jar.name) in bundled:
            jar.unlink()
            removed.append(jar.name)
    return removed


def missing_jars(jars_dir: Path, profile: str, also: tuple[str, ...] = ()) -> list[str]:
    """Required artifacts (of ``profile``, and ``also`` these) not present in ``jars_dir``."""
    present = {artifact_name(p.name) for p in jars_dir.glob("*.jar")} if jars_dir.is_dir() else set()
    return [a for a in (*REQUIRED[profile], *also) if a not in present]


def _maven(pom: Path, jars_root: Path, offline: bool, *args: str) -> subprocess.CompletedProcess:
    if shutil.which("mvn") is None:
        raise JarsError("Maven ('mvn') is not installed; install it (apt-get install maven) and run `make jars`")
    cmd = ["mvn", "-q", "-B", *(["-o"] if offline else []), "-f", str(pom), *args, f"-Djars.dir={jars_root.resolve()}"]
    return subprocess.run([*cmd, "package"], capture_output=True, text=True)


def _errors(proc: subprocess.CompletedProcess) -> str:
    detail = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "ERROR" in ln][:3]
    return " | ".join(detail) or "see mvn output"


def build_udf(jars_root: Path = DEFAULT_JARS_ROOT, offline: bool = False) -> None:
    """Compile ``spark/udf`` into ``<jars_root>/spark`` (needs a JDK's compiler, not only a JRE)."""
    log.info("building %s into %s", UDF_ARTIFACT, jars_root / "spark")
    proc = _maven(UDF_POM, jars_root, offline)
    if proc.returncode != 0:
        raise JarsError(f"Maven could not build {UDF_POM.parent}: {_errors(proc)}")


def resolve(jars_root: Path = DEFAULT_JARS_ROOT, force: bool = False, offline: bool = False) -> None:
    """Run Maven for both profiles unless the jars are already there, then build the project's functions."""
    for profile in PROFILES:
        target = jars_root / profile
        if not force and not missing_jars(target, profile):
            log.info("jars for %s already resolved in %s", profile, target)
            continue
        if target.exists():
            shutil.rmtree(target)
        log.info("resolving %s jars with Maven into %s", profile, target)
        proc = _maven(POM, jars_root, offline, f"-P{profile}")
        if proc.returncode != 0:
            raise JarsError(f"Maven could not resolve the {profile} jars: {_errors(proc)}")
        if profile == "spark":
            removed = prune_bundled(target, pyspark_jar_artifacts())
            log.info("pruned %d jars pyspark already ships", len(removed))
        missing = missing_jars(target, profile)
        if missing:
            raise JarsError(f"Maven finished but {', '.join(missing)} is missing from {target}")
    build_udf(jars_root, offline)


def spark_jars(jars_dir: str | Path) -> list[str]:
    """Absolute paths of the Spark jars; a clear error if they were never resolved."""
    jars_dir = Path(jars_dir)
    missing = missing_jars(jars_dir, "spark", also=(UDF_ARTIFACT,))
    if missing:
        raise JarsError(f"Spark jars missing in {jars_dir} ({', '.join(missing)}): run `make jars` first")
    return sorted(str(p.resolve()) for p in jars_dir.glob("*.jar"))


def kafka_classpath(jars_dir: str | Path) -> str:
    """Java classpath for the broker."""
    jars_dir = Path(jars_dir)
    missing = missing_jars(jars_dir, "kafka")
    if missing:
        raise JarsError(f"Kafka jars missing in {jars_dir} ({', '.join(missing)}): run `make jars` first")
    return str(jars_dir.resolve() / "*")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", default="resolve", choices=["resolve", "list"])
    parser.add_argument("--root", default=str(DEFAULT_JARS_ROOT), help="folder holding spark/ and kafka/")
    parser.add_argument("--force", action="store_true", help="re-resolve even if present")
    parser.add_argument("--offline", action="store_true", help="Maven offline mode (local repository only)")
    parser.add_argument("--csv", action="store_true", help="print the Spark jars comma-separated (for --jars)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        root = Path(args.root)
        if args.csv:
            print(",".join(spark_jars(root / "spark")))
            return 0
        if args.command == "resolve":
            resolve(root, force=args.force, offline=args.offline)
        for profile in PROFILES:
            print(f"{profile}: {len(list((root / profile).glob('*.jar')))} jars in {root / profile}")
        return 0
    except JarsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
