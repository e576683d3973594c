from loopdesk.cli.main import app

app()
