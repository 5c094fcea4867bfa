"""Votes and feedback out as training data: TRL's DPO / KTO / reward formats, LMSYS battle records, raw audits."""
