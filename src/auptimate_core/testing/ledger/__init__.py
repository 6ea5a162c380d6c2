"""The ledger contract's scenarios, by subject; :class:`~auptimate_core.testing.ledger_contract.
LedgerContract` joins them."""
