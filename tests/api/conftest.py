from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from prism.api.app import create_app
from prism.config import Settings
from prism.store.db import make_engine
from prism.store.migrate import upgrade

MODEL = '''"""A tiny model."""
import torch
from torch import nn


def build_model(ctx):
    return nn.Sequential(nn.Embedding(ctx.vocab_size, 16), nn.Linear(16, ctx.vocab_size))
'''


def make_zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


@pytest.fixture
def model_zip() -> bytes:
    return make_zip({"model.py": MODEL})


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    with TestClient(create_app(settings, engine=engine)) as test_client:
        yield test_client
    engine.dispose()
