"""The image canvas: the view (:mod:`.view`), its graphics items (:mod:`.items`), where
captions go (:mod:`.captions`) and the class picker a new box asks with (:mod:`.class_picker`)."""
