"""What the dashboard, notebooks and drift job compute from the stream's tables."""
