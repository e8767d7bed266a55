"""While the start-up analysis runs, the catalog answers at once: it shows the
progress, marks the models not analysed yet as such, and a request for one of
them analyses it first instead of waiting for the warm-up."""

from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from models.registry import get_entry, list_models


def test_catalog_answers_during_warmup_and_marks_what_is_not_analysed(tmp_path):
    app = create_app(Settings(cache_dir=tmp_path, warm_cache=True, device="cpu", analysis_processes=1))
    with TestClient(app) as client:  # the lifespan starts the warm-up
        response = client.get("/")
        assert response.status_code == 200 and response.template.name == "catalog.html"
        progress = response.context["warmup"]
        health = client.get("/api/health").json()["warmup"]
        assert health["running"] and health["total"] == progress.total == len(list_models())
        assert "models analysed" in response.text and "/static/js/warmup.js" in response.text
        assert "not analysed yet" in response.text  # cards of models the warm-up has not reached

        cards = client.get("/api/models").json()["models"]
        assert len(cards) == len(list_models())
        waiting = [c for c in cards if not c["analysed"]]
        assert waiting and all(c["params"] is None and c["macs"] is None for c in waiting)
        # The last torchvision model the warm-up would reach: asked for now, analysed now.
        target = [c["id"] for c in waiting if get_entry(c["id"]).tv_weights is not None][-1]
        detail = client.get(f"/api/models/{target}")
        assert detail.status_code == 200
        assert detail.json()["params"] == get_entry(target).tv_weights.meta["num_params"]
        card = next(c for c in client.get("/api/models").json()["models"] if c["id"] == target)
        assert card["analysed"] and card["params"] == detail.json()["params"]
