"""Small helpers the course notebooks share: model loading, data, plotting and checks."""
from helpers.models import load_model, load_tokenizer

__all__ = ["load_model", "load_tokenizer"]
