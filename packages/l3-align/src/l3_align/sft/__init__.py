"""SFT: assistant-only loss on packed dialogs."""
