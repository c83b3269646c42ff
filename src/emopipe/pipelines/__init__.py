"""Pipelines: `run(...)` functions that the CLI, `dvc repro`, Airflow tasks and tests all call."""
