"""budget-sync: the management account's Lambda package (stream function and reconciler)."""
