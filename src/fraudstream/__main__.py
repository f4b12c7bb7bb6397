from fraudstream.cli import app

app()
