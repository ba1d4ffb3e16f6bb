"""budgetctl: the operators' command line for budget-sync.

Set, read and delete budgets in the budgets table with conditional writes and an audit
trail, bulk import and export, per-account status across the spoke accounts, and drift
repair (the same code as the scheduled reconciler). See docs/operate.md.
"""
