"""schemathesis against the app's own /openapi.json: no 5xx, and every
response matches the schema it declares."""

import os
from pathlib import Path

import pytest
import schemathesis
from schemathesis.checks import negative_data_rejection
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from app.config import Settings
from app.main import create_app
from models.weights import lenet5_training
from tests.conftest import analyse_course_models

APP = create_app(Settings(cache_dir=Path(os.environ["CONVZOO_TEST_CACHE_DIR"]), warm_cache=False, device="cpu"))
# Not the POSTs that start speed measurements: each would set the CPU measuring
# the catalog for minutes (tests/api/test_speed.py covers them, with tiny inputs);
# nor /api/explain, where any valid image with method=occlusion costs 169 forward
# passes, seconds past the client's timeout (tests/api/test_inside.py covers it).
schema = schemathesis.openapi.from_asgi("/openapi.json", APP).exclude(method="POST", path_regex=r"speed|explain")


@pytest.fixture(scope="module", autouse=True)
def warm_catalog():
    analyse_course_models(APP)  # the catalog answers without analysing; the course's models are counted once
    lenet5_training(train=True)  # LeNet-5 trains once per cache (seconds): not inside a request with a timeout


@schema.parametrize()
@hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case):
    # A multipart form sends an array as one field per item, so an empty array arrives as no field at all: the
    # same request as leaving an optional field out, which the server rightly accepts (the default applies).
    empty_form_array = case.media_type == "multipart/form-data" and isinstance(case.body, dict) and any(
        value == [] for value in case.body.values())
    case.call_and_validate(excluded_checks=[negative_data_rejection] if empty_form_array else None)
