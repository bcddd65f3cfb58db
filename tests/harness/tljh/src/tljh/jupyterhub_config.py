"""JupyterHub config of TLJH; the double's hub reads tljh.configurer
directly, so this file only marks the path TLJH's unit passes with -f."""
