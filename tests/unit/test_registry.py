import re

import pytest

from models.catalog import ModelEntry
from models.registry import MODEL_ID_PATTERN, UnknownModelError, get_entry, list_models, register_model


def test_duplicate_id_fails_loudly():
    entry = get_entry("vgg16")
    with pytest.raises(ValueError, match="Duplicate model id 'vgg16'"):
        register_model(entry)


def test_unknown_id_raises():
    with pytest.raises(UnknownModelError):
        get_entry("no_such_net")


def test_ids_are_url_safe_and_unique():
    ids = [entry.id for entry in list_models()]
    assert len(ids) == len(set(ids))
    for model_id in ids:
        assert re.fullmatch(MODEL_ID_PATTERN, model_id) and model_id.islower(), model_id
        assert model_id.replace("_", "").isalnum() or model_id.startswith("timm-"), model_id


def test_timm_names_are_aliases_of_the_course_models():
    assert get_entry("timm-legacy_xception") is get_entry("xception")
    assert get_entry("timm-mobilenetv1_100").id == "mobilenet_v1"
    assert "timm-legacy_xception" not in {entry.id for entry in list_models()}


def test_entries_are_catalog_entries():
    assert all(isinstance(entry, ModelEntry) for entry in list_models())
