"""The base of every error that means "bad input": apps print its message and exit 2, no traceback."""


class UserError(Exception):
    """Input, configuration or environment the user can fix; the message names it and says how."""
