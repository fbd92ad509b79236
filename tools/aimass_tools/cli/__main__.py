from aimass_tools.cli import app

app()
