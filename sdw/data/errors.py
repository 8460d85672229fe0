"""The one exception type of the data layer: its message says what is wrong and how to fix it."""

from sdw.errors import UserError


class DatasetError(UserError):
    """A dataset could not be found, read or validated."""
