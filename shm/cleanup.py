"""Remove shared-memory objects left by processes that no longer exist.

Segments are unlinked right after creation, so nothing is left behind, unless
``state.shm.keep_names`` kept them for debugging. Then a crash of the whole server
leaves ``/dev/shm/<prefix>-<pid>-<random>``; this removes every such object whose
creator pid is gone:

    python -m shm.cleanup [--prefix aegisflow] [--dry-run]
"""

import argparse
import os
import re


def stale(prefix='aegisflow', directory='/dev/shm'):
    pattern = re.compile(rf'(?:sem\.)?{re.escape(prefix)}-(\d+)-[0-9a-f]+(?:-s\d+)?\Z')
    out = []
    for name in sorted(os.listdir(directory)):
        m = pattern.match(name)
        if m is None:
            continue
        pid = int(m.group(1))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            out.append(os.path.join(directory, name))
        except PermissionError:
            pass  # alive, another user's
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--prefix', default='aegisflow')
    parser.add_argument('--dry-run', action='store_true')
    args = parser.parse_args(argv)
    for path in stale(args.prefix):
        print(('would remove ' if args.dry_run else 'removing ') + path)
        if not args.dry_run:
            os.unlink(path)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
