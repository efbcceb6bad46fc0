import pytest

torch = pytest.importorskip("torch", reason="model tests need the l3-core[model] extra")


@pytest.fixture(autouse=True)
def _deterministic_threads():
    torch.manual_seed(0)
    yield
