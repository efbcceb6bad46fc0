"""The Conformer speech encoder: stride-4 frame stacking, macaron Conformer blocks, rotary
self-attention; presets as data; the weight mapping to torchaudio's Conformer."""
