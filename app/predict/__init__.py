"""Predictions: image decoding, the batching inference worker, the request pipeline."""
