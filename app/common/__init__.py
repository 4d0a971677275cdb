"""What every part of the app stands on: settings, theme, colours, shortcuts, the Qt
environment checks and the one worker pattern. Imports nothing else of the app."""
