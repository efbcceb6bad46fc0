"""l3-guard."""
