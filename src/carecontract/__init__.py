"""carecontract: run, pay and stress-test outcomes-based prime-provider care contracts."""

__version__ = "0.1.0"
