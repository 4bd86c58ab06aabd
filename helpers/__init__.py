"""Small helpers the course notebooks share: model loading, data, plotting and checks."""
