"""``budgetctl report``: every account's budget limit, spend and forecast, and the pipeline's
health, as text rows or as one self-contained HTML page with a chart.

model.py   the lines and the organisation's totals (pure)
gather.py  reads them: the budgets and status tables, Organizations, each spoke's budget
chart.py   the chart (matplotlib's SVG backend)
render.py  the text rows and the HTML page (Jinja2, autoescaped)
"""
