"""The optional ServiceNow incidents (docs/itsm.md): one incident per account, budget and
period, opened, updated and resolved by the incident function (handlers/incidents.py).

- ``lifecycle``: the logic, pure Python, and the Protocols it needs.
- ``servicenow``: ServiceNow's Table API (the desk).
- ``table``: the incidents table.
- ``budget_alarms``: a spoke budget's figures, period and notifications in ALARM.
- ``accounts``: the accounts and their incident settings.
- ``config``: the incident function's configuration from the environment.
"""
