"""Thin routes: validate, call the layer below, shape the response."""
