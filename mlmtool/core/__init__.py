"""The one place that runs a model for inference (:mod:`mlmtool.core.forward`)."""
