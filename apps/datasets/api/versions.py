"""API actions of dataset versions (health report, download), mixed into the version view."""


class VersionActions:
    pass
