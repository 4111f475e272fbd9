# Release artefacts into dist/ (scripts/dist does the work; see it for what
# each one contains). `make dist` is what CI runs (tests/suites/packages.sh)
# and what docker/Dockerfile runs.
.PHONY: dist ext ext84 monitor plugin clean-dist

dist:
	scripts/dist

ext ext84 monitor plugin:
	scripts/dist $@

clean-dist:
	rm -rf dist
