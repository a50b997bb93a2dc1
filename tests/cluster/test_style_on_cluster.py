"""Style transfer on a Redis Cluster (two steps, encode then generate, and a saved style):
tests/api/test_style_transfer.py's tests, run here again."""

from __future__ import annotations

from tests.api.test_style_transfer import (  # the fixture the imported tests take
    served,
    test_a_font_job_writes_a_font_that_renders_the_same_glyphs,
    test_saved_style_is_reused_and_deleted,
    test_writes_text_in_the_references_style,
)
