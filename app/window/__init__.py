"""The main window, which assembles the session, views and jobs, and its dialogs."""
