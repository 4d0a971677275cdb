"""The window's docks: image list, Detection (post-processing), feature pyramid, Boxes and
Quality. Each takes the session and writes to it or listens to it."""
