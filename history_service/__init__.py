"""history_service: its own projection of every domain event, served as collection history."""
