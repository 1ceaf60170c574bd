"""Training scripts, one per task (``python -m train.<task>``), and what they share."""
