"""API actions of tabular dataset versions (schema confirmation), mixed into the version view."""


class TabularVersionActions:
    pass
