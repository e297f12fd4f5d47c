"""Use cases: the only orchestrators. One module per area (diagnose, evidence, tickets)."""
