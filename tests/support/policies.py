"""A custom policy class for the tests: it cannot be built while the file named
by its config's ``fail_if_exists`` exists (as a policy that loads a model or a word
list at start cannot, when that file is broken)."""

import os


class FailsWhileFileExists:
    def __init__(self, config):
        marker = config['fail_if_exists']
        if os.path.exists(marker):
            raise RuntimeError(f'cannot build: {marker} exists')

    def scan(self, text):
        return []
