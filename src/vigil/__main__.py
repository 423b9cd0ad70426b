from vigil.cli.main import app

app(prog_name="vigil")
