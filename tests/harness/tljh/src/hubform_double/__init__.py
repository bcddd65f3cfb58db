"""Support code of hubform's TLJH test double (not part of TLJH).

host: settings, switches and records on the test host; hub and proxy: the
processes behind the jupyterhub and traefik services; certs: certificates
for the proxy; conda: the conda/mamba double of the user environment.
"""
