"""WSGI entry point (gunicorn lepton_portal.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lepton_portal.settings")
application = get_wsgi_application()

# A web process starting may follow one that was killed mid-upload: remove what such
# processes left in the upload folder (only files older than LEPTON_UPLOAD_TMP_MAX_AGE_HOURS).
from apps.core.uploads import upload_leftovers_remove  # noqa: E402

upload_leftovers_remove()
