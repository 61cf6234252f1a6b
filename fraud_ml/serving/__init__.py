"""REST scoring of the registered champion with MLflow's own scoring server."""
