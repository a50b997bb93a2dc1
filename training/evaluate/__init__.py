"""Evaluation run by the training jobs and written into their cards."""
