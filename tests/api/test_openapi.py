import json
from pathlib import Path

from prism.api.app import create_app
from prism.config import Settings

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_committed_openapi_schema_matches_the_code() -> None:
    """docs/openapi.json is the served schema; regenerate it with scripts/openapi."""
    served = create_app(Settings(database_url="sqlite://")).openapi()
    assert json.loads(COMMITTED.read_text()) == json.loads(json.dumps(served, sort_keys=True))
