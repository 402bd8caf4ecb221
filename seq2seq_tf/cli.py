"""What every command shares: quiet start-up, one-line user errors, the log format.

A main module calls `quiet_tensorflow()` before anything imports TensorFlow
(TensorFlow's C++ start-up lines, e.g. CUDA probing on a machine without a GPU,
are written before its logging can be configured) and `run(main)` instead of
`absl.app.run`. `--tf_logs` shows TensorFlow's own lines again.

Exit status: 0 done, 2 a user error (one line on stderr naming what to fix),
1 a bug (with its traceback).
"""

from __future__ import annotations

import logging as std_logging
import os
import re
import sys
import tempfile
import traceback
from collections.abc import Callable

from absl import app, flags, logging

from seq2seq_tf.errors import UserError

USER_ERROR_EXIT = 2
_TF_LOGS_FLAG = "--tf_logs"


def _tf_logs_requested(argv: list[str]) -> bool:
    for arg in argv[1:]:
        if arg == _TF_LOGS_FLAG or arg in (f"{_TF_LOGS_FLAG}=true", f"{_TF_LOGS_FLAG}=1"):
            return True
    return False


def quiet_tensorflow(argv: list[str] | None = None) -> None:
    """Imports TensorFlow with its C++ start-up lines hidden (unless --tf_logs).

    TensorFlow's start-up messages (oneDNN notice, "Could not find cuda drivers",
    "failed call to cuInit") are written to file descriptor 2 before
    TF_CPP_MIN_LOG_LEVEL applies, so the import runs with stderr sent to a
    temporary file, which is replayed if the import fails.
    """
    argv = sys.argv if argv is None else argv
    if _tf_logs_requested(argv) or "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # runtime C++ INFO/WARNING/ERROR
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # the CUDA probe happens here, not at import
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.buffer.write(captured.read())
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
    std_logging.getLogger("tensorflow").setLevel(std_logging.WARNING)  # "Sharding callback"


class _ShortFormatter(std_logging.Formatter):
    """`HH:MM:SS message`, with `warning:` / `error:` in front of those levels."""

    def format(self, record: std_logging.LogRecord) -> str:
        text = super().format(record)
        if record.levelno >= std_logging.WARNING:
            return f"{self.formatTime(record, '%H:%M:%S')} {record.levelname.lower()}: {text}"
        return f"{self.formatTime(record, '%H:%M:%S')} {text}"


def _from_the_toolkit_or_an_error(record: std_logging.LogRecord) -> bool:
    """Drops TensorFlow's and Keras's own lines below ERROR, which come through absl's
    logger like ours (e.g. "Sharding callback duration" at every checkpoint, the
    SavedModel writer's notes on renamed inputs)."""
    if record.levelno >= std_logging.ERROR:
        return True
    path = record.pathname.replace(os.sep, "/")
    return not any(f"/{package}/" in path for package in ("tensorflow", "keras", "tf_keras"))


def _configure_logging() -> None:
    if flags.FLAGS.tf_logs:
        std_logging.getLogger("tensorflow").setLevel(std_logging.INFO)
        return
    handler = logging.get_absl_handler()
    handler.setFormatter(_ShortFormatter("%(message)s"))
    handler.addFilter(_from_the_toolkit_or_an_error)
    # sacreBLEU warns about tokenized text at every dev evaluation on tokenized data
    # (the toy corpus, Moses-tokenized references); the score is what was asked for.
    std_logging.getLogger("sacrebleu").setLevel(std_logging.ERROR)


def fail(message: str) -> None:
    """Prints a user error on one line and exits with status 2."""
    sys.stdout.flush()
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(USER_ERROR_EXIT)


def _config_file_frame(err: BaseException) -> str:
    """`file:line` of the innermost traceback frame in a configs/*.py file, if any."""
    config_paths = [a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--config=")]
    targets = {os.path.abspath(p) for p in config_paths}
    for frame in reversed(traceback.extract_tb(err.__traceback__)):
        if os.path.abspath(frame.filename) in targets:
            return f"{frame.filename}:{frame.lineno}: "
    return ""


def _clean(err: BaseException) -> str:
    """ml_collections wraps its message in quotes and escapes it; undo that."""
    text = str(err)
    if len(text) > 1 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]
    text = " ".join(text.replace("\\n", "\n").replace("\\'", "'").split())
    return re.sub(r" Other fields present: \"\{.*\}\"", "", text)  # a dump of the group


def _parse_flags(argv: list[str]) -> list[str]:
    """absl's parser, with config-file and config-override errors on one line."""
    for arg in argv[1:]:  # ml_collections reports a missing file only when it is read
        if arg.startswith("--config="):
            path = arg.split("=", 1)[1].split(":", 1)[0]
            if not os.path.isfile(path):
                fail(f"--config: file not found: {path}")
    try:
        return flags.FLAGS(argv)
    except flags.Error as err:
        fail(f"{err} (see --helpshort)")
    except UserError as err:
        fail(str(err))
    except (AttributeError, KeyError, TypeError, ValueError, SyntaxError, OSError) as err:
        message = _clean(err)
        culprit = [a.split("=", 1)[0] for a in argv[1:] if a.startswith("--config.")]
        culprit = [a for a in culprit if a.rsplit(".", 1)[-1] in message]
        where = f"{culprit[0]}: " if culprit else _config_file_frame(err)
        fail(f"{where}bad config ({type(err).__name__}: {message})")


def run(main: Callable[[list[str]], None], positional: bool = False) -> None:
    """`absl.app.run(main)` with the behaviour described in the module docstring.

    Args:
        positional: whether the command takes positional arguments (else they are
            an error).
    """
    flags.DEFINE_bool("tf_logs", False, "Show TensorFlow's own log lines (hidden by default).")

    def guarded(argv: list[str]) -> None:
        _configure_logging()
        if len(argv) > 1 and not positional:
            fail(f"unexpected arguments {argv[1:]} (flags are --name=value)")
        try:
            main(argv)
        except (UserError, app.UsageError) as err:
            fail(str(err))
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)

    app.run(guarded, flags_parser=_parse_flags)
