"""Work off the GUI thread or in another process: detection (models, images, network),
fine-tuning and COCO export (the TensorFlow side, run as a child process)."""
