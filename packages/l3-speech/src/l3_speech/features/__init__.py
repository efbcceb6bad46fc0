"""Audio in, features out: reading (soundfile), resampling, log-mel filterbanks, SpecAugment,
and JSONL manifests with per-row exclusions."""
