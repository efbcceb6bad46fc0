"""DPO: preference losses, cached reference log-probs, the objective and the run."""
