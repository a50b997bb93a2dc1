"""The HTTP front end: the only package that imports FastAPI. It never runs a model."""
