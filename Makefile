# Two commands do all set-up on a fresh Debian machine:
#   make demo   start the built-in lab, diagnose every target, print the summary
#   make test   the test suite against real OpenSSH servers in the lab
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# What the lab needs from the OS: real OpenSSH (server and client), namespaces and routes, ping.
APT_PACKAGES := openssh-server openssh-client openssl iproute2 nftables iputils-ping procps util-linux time
SYSTEM_TOOLS := /usr/sbin/sshd ssh ssh-keygen openssl ip nft ping unshare nsenter pgrep

.PHONY: setup system venv test demo lint bench clean

setup: system venv

system:
	@missing=""; for t in $(SYSTEM_TOOLS); do command -v $$t >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing the lab's system packages (missing:$$missing)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PACKAGES) >/dev/null; \
	  else \
	    echo "warning: missing$$missing; install: $(APT_PACKAGES) (as root: apt-get install)"; \
	  fi; \
	fi

venv: $(STAMP)

$(STAMP): pyproject.toml setup.py runbook/_scan.c
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name ssh-runbook --display-name "Python (ssh-runbook)" >/dev/null
	touch $(STAMP)

test: setup
	$(PY) -m pytest -q

demo: setup
	$(VENV)/bin/runbook demo

lint: setup
	$(VENV)/bin/ruff check runbook tests bench setup.py
	$(VENV)/bin/ruff format --check runbook tests bench setup.py

bench: setup
	$(PY) -m bench

clean:
	-$(VENV)/bin/runbook lab down --all
	rm -rf $(VENV) reports
