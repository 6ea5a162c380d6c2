"""Reading and writing transactions: one input pipeline (:mod:`.schema`, :mod:`.readers`) that
every command and reader goes through, and the writers."""
