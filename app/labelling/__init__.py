"""Labels in the app: the per-image document with its undo stack, the commands, the crash
journal, class lists, the label controller and export of a labelled set."""
