"""vigil: find terrorist and violent-extremist content early and stop it spreading."""

__version__ = "0.1.0"
