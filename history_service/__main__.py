"""`python -m history_service`."""

from history_service.app import create_app
from history_service.settings import HistorySettings
from shared.runner import serve

if __name__ == "__main__":
    serve(create_app, HistorySettings())
