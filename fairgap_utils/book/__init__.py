"""The book side: result files -> tidy tables (`report`), figures (`plots`), verdicts on the
paper's claims (`verdicts`), notebook helpers (`pages`) and the papermill + jupyter-book
runner (`runner`). Nothing here trains or measures a model; it only reads result files."""
