"""The model registry: registered models, versions, aliases, alias history, API keys."""
