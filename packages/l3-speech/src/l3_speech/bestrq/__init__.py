"""BEST-RQ self-supervised pre-training (Chiu et al. 2022; Llama 3 section 8.1): a frozen
random-projection quantiser gives targets, span masks choose the frames, and a multi-softmax
loss is taken on the masked frames only."""
