"""The local organisation: budget-sync end to end on moto, no AWS account needed."""
