"""Votes and feedback out as training data (TRL preference and SFT formats), LMSYS battle records, raw audits."""
