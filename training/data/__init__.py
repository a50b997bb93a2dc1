"""Glyph data for the style-transfer job: characters, fonts, structure codes, rendering."""
