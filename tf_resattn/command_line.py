"""What every command line of the package shares."""

import argparse
import sys


class OneLineParser(argparse.ArgumentParser):
    """An `ArgumentParser` whose usage errors are one line on stderr with exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def run_with_one_line_errors(prog, command, errors):
    """Runs `command()` and returns its exit status.

    An exception of the types `errors` (bad input) becomes one line on stderr
    and status 2; Ctrl-C becomes status 130 with the hint that rerunning the
    same command resumes.
    """
    try:
        return command()
    except errors as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted; run the same command with the same --out to resume", file=sys.stderr)
        return 130
