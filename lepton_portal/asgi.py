"""ASGI entry point."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lepton_portal.settings")
application = get_asgi_application()

# As lepton_portal.wsgi: remove what web processes killed mid-upload left behind.
from apps.core.uploads import upload_leftovers_remove  # noqa: E402

upload_leftovers_remove()
