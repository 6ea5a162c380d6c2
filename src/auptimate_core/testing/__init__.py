"""Test helpers that ship with the library: throwaway servers and the contract suites.

A user who writes their own :class:`~auptimate_core.WindowStore` or ledger repository can run the
same contract tests the built-in backends pass.
"""
