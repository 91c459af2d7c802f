"""Postmortem impact summaries: what an incident cost, anchored in counted customers and budgets.

`report.build_postmortem` gathers the numbers, `markdown.render_markdown` writes them up, and
`routes` serves them at ``GET /api/v1/postmortem``. (Nothing is imported here, so the CLI can
render Markdown without loading the processor.)
"""
