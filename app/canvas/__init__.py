"""The image canvas, from the bottom up: what the mouse and keys do as pure functions
(:mod:`.interaction`), the graphics items (:mod:`.items`) and where their captions go
(:mod:`.captions`), the boxes of a document on a scene (:mod:`.layers`), the zoomable image
(:mod:`.image_view`), the document shown over it (:mod:`.document_view`), and the editing
canvas (:mod:`.view`) with its actions (:mod:`.actions`) and class picker (:mod:`.class_picker`)."""
