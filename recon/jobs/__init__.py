"""Reconciliation jobs: rule sets, queueing, running the engine, publishing results."""
