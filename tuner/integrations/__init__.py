"""Integrations with other tools, each an ``Experiment.run(callbacks=[...])`` callback in a
module of its own that imports its tool only when used: ``tuner.integrations.mlflow``."""
