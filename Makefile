# The README's two commands are `make run` and `make test`; both do any missing set-up first.
.PHONY: run test demo setup package install-desktop uninstall-desktop benchmarks

VENV ?= .venv

setup:
	@bash scripts/setup.sh

run: setup
	$(VENV)/bin/cognitivetwin-studio

test: setup
	bash scripts/run-tests.sh

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
