"""The names Platform's validator agent imports for the `prism` challenge.

Platform's `PrismCycleExecutor` does `from prism_challenge.validator_dispatch import
dispatch_assignment`; the code lives in `prism.validators.dispatch`.
"""
