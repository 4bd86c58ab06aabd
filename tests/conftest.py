"""Shared test setup."""
import pytest
import torch


@pytest.fixture(autouse=True)
def _grad_mode_is_per_test():
    """Each test starts with gradients on, whatever an earlier test or import switched off."""
    torch.set_grad_enabled(True)
    yield
    torch.set_grad_enabled(True)
