"""Adapter pre-training on image-text pairs: data, the captioning objective, a small loop."""
