"""hubform's double of TLJH's `tljh` package (see tests/harness/tljh).

The modules keep TLJH's names: config (tljh-config), configurer (defaults
and merging), installer, traefik (proxy config rendering), plus schema and
yamlfile, which stand in for jsonschema and ruamel.yaml.
"""
