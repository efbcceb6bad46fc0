"""The training runner shared by SFT, DPO and part B's reward model."""
