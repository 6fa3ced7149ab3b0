from connectx.cli import app

app()
