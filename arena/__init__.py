"""Corral's arena: configuration, battles, votes, storage and the web UI."""
