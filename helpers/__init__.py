"""Small helpers the course notebooks share: model loading, data, plotting and checks."""
from helpers.models import load_model, load_tokenizer
from helpers.offline import use_bundled_circuitsvis

use_bundled_circuitsvis()     # circuitsvis views inline their own bundle: no online probe, no CDN

__all__ = ["load_model", "load_tokenizer"]
