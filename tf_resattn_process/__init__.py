"""Sets up a process that runs tf_resattn: TensorFlow's settings and a quiet start, opt-in.

`import tf_resattn` changes nothing outside the package: no environment
variable, file descriptor or TensorFlow setting. The command lines of the
package (`tf_resattn_process.commands`, `scripts/*.py`) call
`configure_process()` first; a script author who wants the same start calls it
before anything imports TensorFlow (this package never imports it at import)::

    import tf_resattn_process

    tf_resattn_process.configure_process()

    import tf_resattn
"""

import os

from tf_resattn_process.onednn import enable_onednn_by_default
from tf_resattn_process.quiet_start import import_tensorflow

__all__ = ["configure_process"]


def configure_process():
    """Prepares this process for TensorFlow and starts it quietly; call it before TensorFlow is imported.

    Sets `TF_ENABLE_ONEDNN_OPTS=1` on x86-64 (`onednn`) and
    `TF_CPP_MIN_LOG_LEVEL=1` (TensorFlow's INFO lines off, warnings and errors
    on) where the user has not set them, then imports TensorFlow without its
    start-up notices (`quiet_start`). Both variables reach the process's
    children too. Called after TensorFlow is imported, the settings come too
    late for this process; the call is then harmless.
    """
    enable_onednn_by_default()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    import_tensorflow()
