"""What every command line of the package shares."""

import argparse
import sys

from tf_resattn.optional import MissingExtraError


class OneLineParser(argparse.ArgumentParser):
    """An `ArgumentParser` whose usage errors are one line on stderr with exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def run_with_one_line_errors(prog, command, errors, resumable=False):
    """Runs `command()` and returns its exit status.

    An exception of the types `errors` (bad input) or a `MissingExtraError` (an
    optional dependency not installed) becomes one line on stderr (`prog:
    error: message`, its white space collapsed) and status 2; Ctrl-C
    becomes status 130, with the hint that rerunning the same command resumes
    when `resumable`.
    """
    try:
        return command()
    except (*errors, MissingExtraError) as error:
        print(f"{prog}: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = "; run the same command with the same --out to resume" if resumable else ""
        print(f"\n{prog}: interrupted{hint}", file=sys.stderr)
        return 130
