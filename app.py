"""Entry point: `gunicorn app:server`, or `python app.py` for a development server."""
from dashboard import create_app

app = create_app()
server = app.server

if __name__ == "__main__":
    settings = server.extensions["command_center"].settings
    app.run(host=settings["DASHBOARD_HOST"], port=settings["DASHBOARD_PORT"], debug=False)
