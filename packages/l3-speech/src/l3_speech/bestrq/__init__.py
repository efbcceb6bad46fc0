"""bestrq."""
