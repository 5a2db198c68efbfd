"""Building the shipped offline English model en-mini (``python -m scripts.en_mini.build --recipe``, ``make en-mini``)."""
