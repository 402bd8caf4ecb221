"""The one error class a user can fix: the commands print its message on one line.

Every check of input, config, workdir or flags raises a subclass of `UserError`
with a message that names the file, line, field or flag. The command-line mains
(`seq2seq_tf.cli.run`) print it as `error: <message>` and exit with status 2;
anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input the user can fix; the message says what and where."""


class MissingFileError(UserError, FileNotFoundError):
    """A file or directory the command needs is not there; the message names it."""
