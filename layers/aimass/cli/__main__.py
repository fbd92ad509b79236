from aimass.cli import app

app()
