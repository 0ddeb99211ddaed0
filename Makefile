# Shortcuts; each wraps scripts/dev.py, which needs only Python 3.11+.
PY ?= python3
.PHONY: run test lint bench
run:
	$(PY) scripts/dev.py run
test:
	$(PY) scripts/dev.py test
lint:
	$(PY) scripts/dev.py lint
bench:
	$(PY) scripts/dev.py bench
