"""Settings of the example: one app, SQLite (or the PostgreSQL that ``EXAMPLE_PG_URL`` names),
the library's errors answered as JSON."""

import os
from pathlib import Path
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "example-only-not-a-secret"
DEBUG = True
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["payments.apps.PaymentsConfig"]
MIDDLEWARE = ["payments.middleware.AuptimateErrors"]
ROOT_URLCONF = "project.urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("EXAMPLE_DB", str(BASE_DIR / "db.sqlite3")),
    }
}
if os.environ.get("EXAMPLE_PG_URL"):
    _pg = urlsplit(os.environ["EXAMPLE_PG_URL"])
    DATABASES["default"] = {
        "ENGINE": "django.db.backends.postgresql", "NAME": _pg.path.lstrip("/") or "postgres",
        "USER": _pg.username or "", "PASSWORD": _pg.password or "",
        "HOST": _pg.hostname or "127.0.0.1", "PORT": str(_pg.port or 5432),
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
