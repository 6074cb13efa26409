"""The case conference: agenda, presentation, notes and decisions, handout, calibration."""
