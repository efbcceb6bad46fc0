"""Speech recognition through a frozen language model: the composed model, its objective,
greedy transcription, word error rate, and the checkpoint directory."""
