"""While the start-up analysis runs, / shows its progress and the catalog, without waiting."""

from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app


def test_catalog_page_shows_warmup_progress(tmp_path):
    app = create_app(Settings(cache_dir=tmp_path, warm_cache=True, device="cpu"))
    with TestClient(app) as client:  # the lifespan starts the warm-up
        response = client.get("/")
        assert response.status_code == 200
        assert response.template.name == "catalog.html"
        progress = response.context["warmup"]
        health = client.get("/api/health").json()["warmup"]
        assert health["running"] and health["total"] == progress.total == len(client.get("/api/models").json()["models"])
        assert "not analysed yet" in response.text  # cards of models the warm-up has not reached
        assert "models analysed" in response.text and "/static/js/warmup.js" in response.text
