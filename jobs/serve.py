"""REST scoring of the champion with MLflow's own scoring server (``/ping``, ``POST /invocations``).

    python jobs/serve.py [--set serve.port=5001] [--set serve.host=127.0.0.1]
    curl -s http://127.0.0.1:5001/invocations -H 'Content-Type: application/json' \\
        -d '{"dataframe_split": {"columns": ["Time", "V1", ..., "Amount"], "data": [[0, -1.36, ...]]}}'

Serves models:/<mlflow.model_name>@<mlflow.alias> from the configured registry, downloaded and
checked to be logged from code first (nothing is unpickled); the version is pinned at start.
Binds serve.host (127.0.0.1 by default). Integers are accepted where the features are numbers.
"""

import sys

from fraud_ml.cli import job_parser, run_job
from fraud_ml.serving.rest import serve


def main(args, cfg) -> int:
    return serve(cfg)


if __name__ == "__main__":
    sys.exit(run_job(main, job_parser(__doc__)))
