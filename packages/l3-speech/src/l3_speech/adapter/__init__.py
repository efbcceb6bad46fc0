"""The speech adapter and the splice of its outputs into a frozen language model's embeddings."""
