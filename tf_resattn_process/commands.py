"""The package's command lines as console scripts: each calls `configure_process()`, then its `main`.

A command's module imports TensorFlow (through `tf_resattn`), so it is
imported only after the process is set up; a missing optional dependency,
found while it imports, is one line naming the extra to install, as in the
command itself. `scripts/*.py` call the same functions.
"""

import importlib
import os
import sys

from tf_resattn_process import configure_process


def _command(module):
    """The function that sets up the process, then returns `module.main(argv)` (the exit status)."""

    def command(argv=None):
        configure_process()
        from tf_resattn.command_line import run_with_one_line_errors

        program = os.path.basename(sys.argv[0])
        return run_with_one_line_errors(program, lambda: importlib.import_module(module).main(argv), ())

    command.__doc__ = f"`configure_process()`, then `{module}.main(argv)`; returns the exit status."
    return command


cv = _command("tf_resattn.training.cli")
predict = _command("tf_resattn.inference.predict_cli")
export = _command("tf_resattn.export.export_cli")
tune = _command("tf_resattn.tuning.cli")
robustness = _command("tf_resattn.inference.robustness_cli")
