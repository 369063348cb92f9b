# The README's two commands are `make run` and `make test`; both do any missing set-up first.
.PHONY: run test test-fast lint format demo setup package install-desktop uninstall-desktop benchmarks

VENV ?= .venv

setup:
	@bash scripts/setup.sh

# Bytecode is written on first import even where PYTHONDONTWRITEBYTECODE is set (docs/testing.md).
run: setup
	env -u PYTHONDONTWRITEBYTECODE $(VENV)/bin/cognitivetwin-studio

test: setup lint
	bash scripts/run-tests.sh

# The inner loop: lint, then every test not marked slow (none loads the built-in model's
# weights or trains on it). CI runs `make test`, everything.
test-fast: setup lint
	bash scripts/run-tests.sh -m "not slow"

# Lint, format check and the import contracts (docs/ARCHITECTURE.md); `make test` runs it first.
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

demo: setup
	$(VENV)/bin/cognitivetwin demo

package: setup
	$(VENV)/bin/python -m pip -q install -e ".[package]"
	bash packaging/build.sh
	bash packaging/check_bundle.sh

install-desktop: setup
	$(VENV)/bin/python packaging/desktop_install.py install

uninstall-desktop:
	python3 packaging/desktop_install.py uninstall
