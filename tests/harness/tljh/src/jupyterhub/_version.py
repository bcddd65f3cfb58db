__version__ = "5.2.1"
