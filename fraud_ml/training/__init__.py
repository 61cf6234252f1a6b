"""The batch/training path: splits, the pyfunc champion, thresholds and calibration, zoo, tuning, promotion."""
