"""POST /predict on a Redis Cluster: tests/api/test_predict.py's test, run here again."""

from __future__ import annotations

from tests.api.test_predict import (  # the fixtures the imported test takes
    model_dirs,
    served,
    test_classification_rows_get_entropy_and_information,
    test_regression_rows_get_mixture_summaries,
)
