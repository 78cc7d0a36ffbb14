"""The HTML report: figures (plotly) and a Jinja2 template, written as one self-contained file."""
