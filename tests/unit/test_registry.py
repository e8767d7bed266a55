import pytest

from models.catalog import ModelEntry
from models.registry import UnknownModelError, get_entry, list_models, register_model


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
        assert model_id.replace("_", "").isalnum() and model_id.islower(), model_id


def test_entries_are_catalog_entries():
    assert all(isinstance(entry, ModelEntry) for entry in list_models())
