"""Text normalisation: written forms (numbers, dates, units, currencies) to spoken words."""
