"""The verbs of the ``smevo`` command, one module per verb or family of verbs.

`smevo.cli` is the entry point: it builds the parser (`smevo.commands.parser`), runs the
chosen verb and turns its errors into one-line messages and exit statuses. Each verb imports
the library (torch, Gymnasium) only when it runs, so that ``smevo --help`` stays fast.
"""
