"""Settings for the test run: the portal's own settings, with its data in a temporary folder."""

import os
import tempfile

os.environ.setdefault("LEPTON_DATA_DIR", tempfile.mkdtemp(prefix="lepton-test-"))
os.environ.setdefault("LEPTON_PROGRESS_INTERVAL", "0.2")

from lepton_portal.settings import *  # noqa: F403

# Hashing passwords slowly protects users, not tests.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Whitenoise warns when the collected-static folder is missing; tests serve from the finders.
STATIC_ROOT = DATA_DIR / "staticfiles"  # noqa: F405
STATIC_ROOT.mkdir(exist_ok=True)
